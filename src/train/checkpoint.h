/* Checkpoint folders OUT/checkpoint-STEP/: the adapter (PEFT files, written by the model),
 * trainer_state.safetensors (trainable tensors, AdamW m and v; metadata "trainer_state": a JSON
 * object with the step, optimizer step, epoch, seed and the run's shape). The RNG state needs no
 * saving: the data order of an epoch and the dropout draws of a micro-batch are seeded from
 * (seed, epoch) and (seed, step, micro-batch), so the step restores them and config.json (the options of the run).
 * Each file is written atomically, and the folder is published by renaming
 * checkpoint-STEP.tmp once complete. */
#ifndef BL_TRAIN_CHECKPOINT_H
#define BL_TRAIN_CHECKPOINT_H
#include "core/bl.h"

#define BL_CHECKPOINT_STATE "trainer_state.safetensors"
#define BL_CHECKPOINT_FORMAT "balora-trainer-state-1"

/* Complete checkpoints (those holding trainer_state.safetensors) under dir, ascending steps. */
balora_status bl_checkpoint_list(const char *dir, int64_t *steps, int cap, int *n);
/* The newest complete checkpoint folder under dir. */
balora_status bl_checkpoint_latest(const char *dir, char *out, size_t cap);
/* Replaces final_dir with tmp (rename). */
balora_status bl_checkpoint_publish(const char *tmp, const char *final_dir);
/* Removes all but the newest `keep` checkpoints (keep <= 0: keep all). */
balora_status bl_checkpoint_prune(const char *dir, int keep);
/* rm -rf */
balora_status bl_rmtree(const char *path);

#endif
