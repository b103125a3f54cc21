/* cfgcheck: the effective configuration compared across the ranks of
 * fuze_init's communicator (cfgcheck.c). Never installed. */
#ifndef FUZE_CFGCHECK_H
#define FUZE_CFGCHECK_H

#include "comm/net.h"
#include "core/config.h"

/* Collective over net->comm, before anything that depends on the
 * configuration: FUZE_SUCCESS when every key but verbose has the same
 * effective value on every rank; else FUZE_ERR_CONFIG on every rank with
 * the same message, naming the first differing key, every distinct value
 * with the ranks that have it and the environment variable that set it
 * ("config key 'code' differs across ranks: rank 0 has 'rs', ranks 3,5 have
 * 'replicate' (from environment variable FUZE_CODE)"), and the other keys
 * that differ. */
int fuze__config_compare(fuze_net *net, const fuze_config *cfg);

#endif
