/* savctl config get and redis acl: what the configuration says, for scripts (deploy/local/run.sh, the test
 * harness) that must read the same file, the same way, as the services. */
#include "savctl.h"
#include "err.h"
#include "redisacl.h"

#include <stdio.h>
#include <string.h>

const char savctl_help_config_get[] =
    "NAME\n    savctl config get - print the effective value of a configuration key\n\n"
    "SYNOPSIS\n    savctl [--config FILE] config get SECTION.KEY\n\n"
    "DESCRIPTION\n"
    "    Prints the value the services would use for SECTION.KEY: the file's value, or\n"
    "    SAV_<SECTION>_<KEY> from the environment, or the built-in default.\n"
    "    Example: savctl config get redis.port\n\n"
    "EXIT STATUS\n    0 printed, 1 unknown key or bad usage.\n";

int savctl_cmd_config_get(savctl *ctl, int argc, char **argv) {
    if (argc != 2) return savctl_usage_error("config get", "expects exactly one SECTION.KEY");
    char section[64], value[SETTINGS_STR];
    const char *dot = strchr(argv[1], '.');
    if (!dot || (size_t)(dot - argv[1]) >= sizeof(section))
        return savctl_usage_error("config get", "\"%s\" is not SECTION.KEY", argv[1]);
    snprintf(section, sizeof(section), "%.*s", (int)(dot - argv[1]), argv[1]);
    if (settings_get(&ctl->cfg, section, dot + 1, value, sizeof(value)) != 0)
        return savctl_usage_error("config get", "%s", err_get());
    if (ctl->json)
        savctl_print_json(json_pack("{s:s,s:s}", "key", argv[1], "value", value));
    else
        puts(value);
    return SAVCTL_OK;
}

const char savctl_help_redis_acl[] =
    "NAME\n    savctl redis acl - print the Redis ACL rule of every service's user\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--json] redis acl\n\n"
    "DESCRIPTION\n"
    "    Prints, per service, its Redis user (SERVICE.redis_user) and the rule that gives it\n"
    "    only what it needs: SAV's keys (redis.prefix), the plain commands of the Functions\n"
    "    library, and the Functions that service calls. A line of a Redis ACL file is\n"
    "        user USER on >PASSWORD RULE\n"
    "    with the password of SERVICE.redis_password; savctl never reads the passwords.\n"
    "    deploy/local/run.sh and the test harness build their ACL file this way.\n\n"
    "OUTPUT\n    SERVICE USER RULE, one line each; --json: {\"users\": [{\"service\", \"user\", \"rule\"}]}\n\n"
    "EXIT STATUS\n    0 printed, 1 bad usage.\n";

int savctl_cmd_redis_acl(savctl *ctl, int argc, char **argv) {
    (void)argv;
    if (argc != 1) return savctl_usage_error("redis acl", "takes no arguments");
    json_t *users = json_array();
    for (int id = 0; id < SVC_COUNT; id++) {
        char rule[4096];
        if (redisacl_rule(id, ctl->cfg.redis_prefix, rule, sizeof(rule)) != 0) {
            json_decref(users);
            return savctl_usage_error("redis acl", "%s", err_get());
        }
        const char *name = settings_service_name(id), *user = ctl->cfg.redis_user[id];
        if (ctl->json)
            json_array_append_new(users, json_pack("{s:s,s:s,s:s}", "service", name, "user", user, "rule", rule));
        else
            printf("%s %s %s\n", name, user, rule);
    }
    if (ctl->json)
        savctl_print_json(json_pack("{s:o}", "users", users));
    else
        json_decref(users);
    return SAVCTL_OK;
}
