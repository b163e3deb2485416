/* config.json of every family: the input parsed as JSON, then the decoder parser (bl_config_parse)
 * with the loaders' size check, and the encoder parser (bl_enc_config_parse, with and without a
 * num_labels override). Each refuses the model types it does not own. */
#include "fuzz_util.h"
#include "encoders/encoder.h"
#include "model/internal.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (!j) return 0;
    bl_config c;
    if (!fz_check(bl_config_parse(&c, j, "config.json"))) fz_check(bl_model_check_size(&c, "config.json"));
    bl_enc_config e;
    fz_check(bl_enc_config_parse(&e, j, "config.json", 0));
    bl_enc_config_parse(&e, j, "config.json", 3);
    cJSON_Delete(j);
    return 0;
}
