/* inject_corrupt: the `corrupt` fault injection (silent data corruption for
 * fuze_verify and code=byzantine to find). Never installed. */
#ifndef FUZE_INJECT_CORRUPT_H
#define FUZE_INJECT_CORRUPT_H

#include "data/state.h"

/* End of a committed checkpoint, before any scrub or Byzantine check: every
 * inject=corrupt spec due now on this rank flips its bits. Local. */
void fuze__inject_corrupt(fuze_ctx *ctx);

/* The injections' random stream (splitmix64): the next value of state *s. */
uint64_t fuze__inject_mix(uint64_t *s);

#endif
