/* savctl config get: prints one effective configuration value, so scripts
 * (deploy/local/run.sh) read the same file, the same way, as the services. */
#include "savctl.h"
#include "err.h"

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
