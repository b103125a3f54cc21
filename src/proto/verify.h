/* verify: scrubbing of committed state (fuze_verify, verify_every). Never installed. */
#ifndef FUZE_VERIFY_H
#define FUZE_VERIFY_H

#include "data/state.h"

int fuze__verify_collective(fuze_ctx *ctx, fuze_verify_report *report); /* collective */
/* End of a committed checkpoint: corrupt injections, then fuze_verify when
 * verify_every says so (FUZE_RECOVERED becomes FUZE_SUCCESS). Collective. */
int fuze__verify_after_commit(fuze_ctx *ctx);

#endif
