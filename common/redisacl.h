/* redisacl: what each service may do in Redis, as an ACL rule for its own user (redis_user). Redis checks the
 * commands a Function runs against the caller's rights, so every service keeps the plain commands the Functions
 * library uses, on SAV's keys only (<prefix>:*); what tells the services apart is which Functions each may call
 * (+fcall|name), and nothing outside that list is allowed: no FLUSHALL, KEYS, CONFIG, EVAL, SCRIPT, MODULE, ACL,
 * DEBUG, SHUTDOWN, MIGRATE, pub/sub. A Function or command added to a service must be added here: the system
 * tests fail on any ACL denial. */
#ifndef SAV_REDISACL_H
#define SAV_REDISACL_H

#include <stddef.h>

#include "settings.h"

/* Writes into out the ACL rule of service id for keys under prefix ("resetkeys ~sav:* ... +fcall|..."), without
 * the user name or password; 0, or -1 with err when it does not fit. */
int redisacl_rule(enum service_id id, const char *prefix, char *out, size_t outlen);

#endif
