/* placeholder */
#include "emu.h"
static void h(const emu_req_t *req, emu_resp_t *resp) { (void) req; (void) resp; }
static void e(emu_resp_t *resp, emu_errkind_t kind, int status, const char *message) { emu_resp_json(resp, status, json_pack("{s:s}", "error", message ? message : "")); }
const emu_platform_ops_t emu_erp_ops = {"/erp", h, e};
