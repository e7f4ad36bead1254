/* Unit tests for common/settings.c: defaults, parsing, refusals with file:line, environment overrides, lookups. */
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "settings.h"

extern char **environ;

/* The process the configurations of a test are loaded for (SVC_COUNT: a tool's, like savctl's). */
static enum service_id load_as = SVC_COUNT;

/* The temporary config file of the running test; removed by the teardown. */
static char conf_path[64];

/* Writes text to a fresh temporary file and returns its path. */
static const char *conf_write(const char *text) {
    if (conf_path[0]) unlink(conf_path);
    snprintf(conf_path, sizeof(conf_path), "/tmp/sav-unit-conf-XXXXXX");
    int fd = mkstemp(conf_path);
    if (fd < 0) fail_msg("mkstemp failed");
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    close(fd);
    assert_int_equal(len, (size_t)n);
    return conf_path;
}

/* Removes every SAV_* variable, so that the caller's environment cannot leak into a test. */
static void env_clear_sav(void) {
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "SAV_", 4) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof(name)) snprintf(name, sizeof(name), "%.*s", (int)n, *e);
                break;
            }
        if (!name[0]) return;
        unsetenv(name);
    }
}

static int settings_setup(void **state) {
    (void)state;
    load_as = SVC_COUNT;
    conf_path[0] = '\0';
    env_clear_sav();
    return 0;
}

static int settings_teardown(void **state) {
    (void)state;
    if (conf_path[0]) unlink(conf_path);
    conf_path[0] = '\0';
    env_clear_sav();
    return 0;
}

/* Loads text as a config file and fails unless it is refused with exactly "<path>:<line>: <reason>". */
static void load_refused_at(const char *text, int line, const char *reason) {
    settings s;
    const char *path = conf_write(text);
    unit_err_clear();
    if (settings_load_service(&s, path, load_as) != -1) fail_msg("config accepted:\n%s", text);
    char expected[512];
    snprintf(expected, sizeof(expected), "%s:%d: %s", path, line, reason);
    assert_err_equal(expected);
    unlink(conf_path);
    conf_path[0] = '\0';
}

/* Loads text as a config file and fails unless it is refused with an error containing needle. */
static void load_refused(const char *text, const char *needle) {
    settings s;
    const char *path = conf_write(text);
    unit_err_clear();
    if (settings_load_service(&s, path, load_as) != -1) fail_msg("config accepted:\n%s", text);
    assert_err_contains(needle);
    unlink(conf_path);
    conf_path[0] = '\0';
}

static void test_empty_file_gives_every_default(void **state) {
    (void)state;
    settings s;
    const char *path = conf_write("");
    assert_int_equal(0, settings_load(&s, path));
    assert_string_equal(path, s.path);
    assert_string_equal("127.0.0.1", s.redis_host);
    assert_int_equal(6390, s.redis_port);
    assert_int_equal(2000, s.redis_timeout_ms);
    assert_int_equal(1, s.redis_shards);
    assert_string_equal("sav", s.redis_prefix);
    assert_int_equal(7, s.dedup_ttl_days);
    assert_string_equal("tcp://127.0.0.1:5551", s.endpoint[SVC_INTAKE]);
    assert_string_equal("tcp://127.0.0.1:5552", s.endpoint[SVC_DIAGNOSTICS]);
    assert_string_equal("tcp://127.0.0.1:5553", s.endpoint[SVC_BILLING]);
    assert_string_equal("tcp://127.0.0.1:5554", s.endpoint[SVC_NOTIFICATION]);
    assert_string_equal("1", s.instance);
    assert_string_equal("info", s.log_level);
    assert_int_equal(65536, s.max_frame_bytes);
    assert_int_equal(1048576, s.socket_max_bytes);
    assert_int_equal(128, s.relay_batch);
    assert_int_equal(1024, s.relay_window);
    assert_int_equal(1000, s.relay_ack_timeout_ms);
    assert_int_equal(5000, s.relay_backoff_max_ms);
    assert_int_equal(60, s.relay_max_attempts);
    assert_int_equal(1000, s.relay_scan_ms);
    assert_int_equal(3000, s.request_timeout_ms);
    assert_int_equal(3, s.request_attempts);
    assert_string_equal("catalog.json", s.catalog_path);
    assert_string_equal("../../services/notification/templates", s.templates_dir);
    assert_int_equal(15, s.sla_days[0]);
    assert_int_equal(3, s.pickup_reminders.n);
    assert_int_equal(90, s.pickup_reminders.day[2]);
    assert_int_equal(2000, s.vat_basis_points);
}

static void test_values_are_read_with_comments_spaces_and_crlf(void **state) {
    (void)state;
    settings s;
    const char *path;
    path = conf_write("# SAV test configuration\n"
                      "\n"
                      "[redis]\n"
                      "  host   =   redis.example.internal  \n"
                      "port=6400 # a trailing comment\n"
                      "shards = 1\t# after a tab\r\n"
                      "prefix = savtest\n"
                      "; another comment style\n"
                      "   # indented comment\n"
                      "[intake]\n"
                      "endpoint = tcp://0.0.0.0:6551\n"
                      "[service]\n"
                      "instance = intake-2\n"
                      "log_level = debug\n"
                      "[bus]\n"
                      "max_frame_bytes = 1024\n"
                      "socket_max_bytes = 67108864\n"
                      "[billing]\n"
                      "vat_basis_points = 550\n"
                      "[intake]\n"
                      "pickup_reminder_days = 1, 2,5\n"
                      "[notification]\n"
                      "templates = /srv/sav/templates"); /* last line without a newline */
    unit_err_clear();
    if (settings_load(&s, path) != 0) fail_msg("refused: %s", err_get());
    assert_string_equal("redis.example.internal", s.redis_host);
    assert_int_equal(6400, s.redis_port);
    assert_int_equal(1, s.redis_shards);
    assert_string_equal("savtest", s.redis_prefix);
    assert_string_equal("tcp://0.0.0.0:6551", s.endpoint[SVC_INTAKE]);
    assert_string_equal("tcp://127.0.0.1:5552", s.endpoint[SVC_DIAGNOSTICS]);
    assert_string_equal("intake-2", s.instance);
    assert_string_equal("debug", s.log_level);
    assert_int_equal(1024, s.max_frame_bytes);
    assert_int_equal(67108864, s.socket_max_bytes);
    assert_int_equal(550, s.vat_basis_points);
    assert_int_equal(3, s.pickup_reminders.n);
    assert_int_equal(5, s.pickup_reminders.day[2]);
    assert_string_equal("/srv/sav/templates", s.templates_dir);
    assert_int_equal(2000, s.redis_timeout_ms); /* untouched keys keep their default */
}

static void test_unknown_section_refused_with_file_and_line(void **state) {
    (void)state;
    load_refused_at("[redis]\nport = 6390\n\n[nosuch]\nfoo = 1\n", 5, "unknown setting nosuch.foo");
    /* Spaces inside the brackets are part of the name, so the section is unknown. */
    load_refused("[ redis ]\nport = 6390\n", ":2: unknown setting");
}

static void test_unknown_key_refused_with_file_and_line(void **state) {
    (void)state;
    load_refused_at("# comment\n[redis]\nprot = 6390\n", 3, "unknown setting redis.prot");
    load_refused_at("[redis]\nPort = 6390\n", 2, "unknown setting redis.Port");
    /* A key that exists, but in another section. */
    load_refused_at("[intake]\nport = 6390\n", 2, "unknown setting intake.port");
    load_refused_at("[redis]\n= 6390\n", 2, "unknown setting redis.");
}

static void test_bad_integer_refused(void **state) {
    (void)state;
    load_refused_at("[redis]\nport = abc\n", 2, "redis.port must be an integer from 0 to 65535, got \"abc\"");
    load_refused_at("[redis]\nport = 12x\n", 2, "redis.port must be an integer from 0 to 65535, got \"12x\"");
    load_refused_at("[redis]\nport = 6390.0\n", 2, "redis.port must be an integer from 0 to 65535, got \"6390.0\"");
    load_refused_at("[redis]\nport =\n", 2, "redis.port must be an integer from 0 to 65535, got \"\"");
    load_refused_at("[redis]\nport = 0x1000\n", 2, "redis.port must be an integer from 0 to 65535, got \"0x1000\"");
    load_refused_at("[redis]\nport = 6390#no space before the hash\n", 2,
                    "redis.port must be an integer from 0 to 65535, got \"6390#no space before the hash\"");
    load_refused_at("[redis]\ntimeout_ms = 99999999999999999999999\n", 2,
                    "redis.timeout_ms must be an integer from 10 to 60000, got \"99999999999999999999999\"");
}

static void test_integer_out_of_range_refused(void **state) {
    (void)state;
    load_refused_at("[redis]\nport = 65536\n", 2, "redis.port must be an integer from 0 to 65535, got \"65536\"");
    load_refused_at("[redis]\nport = -1\n", 2, "redis.port must be an integer from 0 to 65535, got \"-1\"");
    load_refused_at("[redis]\nshards = 0\n", 2, "redis.shards must be an integer from 1 to 1, got \"0\"");
    load_refused_at("[redis]\nshards = 2\n", 2, "redis.shards must be an integer from 1 to 1, got \"2\"");
    load_refused_at("[intake]\npickup_reminder_days = 30,7\n", 2, "intake.pickup_reminder_days must be up to 8 increasing numbers of days from 1 to 3650 separated by commas, got \"30,7\"");
    load_refused_at("[intake]\npickup_reminder_days = 7,x\n", 2, "intake.pickup_reminder_days must be up to 8 increasing numbers of days from 1 to 3650 separated by commas, got \"7,x\"");
    load_refused_at("[intake]\npickup_reminder_days = 0\n", 2, "intake.pickup_reminder_days must be up to 8 increasing numbers of days from 1 to 3650 separated by commas, got \"0\"");
    load_refused_at("[billing]\nvat_basis_points = 10001\n", 2,
                    "billing.vat_basis_points must be an integer from 0 to 10000, got \"10001\"");
    load_refused_at("[client]\nattempts = 0\n", 2, "client.attempts must be an integer from 1 to 100, got \"0\"");
    /* The bounds themselves are accepted. */
    settings s;
    const char *path = conf_write("[redis]\nport = 65535\nshards = 1\n[client]\nattempts = 100\n");
    assert_int_equal(0, settings_load(&s, path));
    assert_int_equal(65535, s.redis_port);
    assert_int_equal(1, s.redis_shards);
    assert_int_equal(100, s.request_attempts);
}

static void test_syntax_errors_refused(void **state) {
    (void)state;
    load_refused_at("[redis\nport = 1\n", 1, "a section header must look like [name]");
    load_refused_at("# c\n[]\n", 2, "a section header must look like [name]");
    load_refused_at("[redis] extra\n", 1, "a section header must look like [name]");
    load_refused_at("[redis] # comment\n", 1, "a section header must look like [name]");
    load_refused_at("[redis]\nport 6390\n", 2, "expected \"key = value\" or \"[section]\"");
    load_refused_at("port = 6390\n", 1, "key \"port\" appears before any [section]");
}

static void test_overlong_line_and_value_refused(void **state) {
    (void)state;
    char text[2100];
    snprintf(text, sizeof(text), "[redis]\nhost = %02000d\n", 0);
    load_refused_at(text, 2, "line longer than 1022 bytes");
    load_refused_at("[redis]\nprefix = abcdefghijklmnopqrstuvwxyz0123456789\n", 2,
                    "redis.prefix is too long (36 bytes, at most 31)");
    load_refused_at("[redis]\nhost = caf\xC3\n", 2, "redis.host is not valid UTF-8");
}

static void test_missing_file_refused(void **state) {
    (void)state;
    settings s;
    unit_err_clear();
    assert_int_equal(-1, settings_load(&s, "/nonexistent/sav-unit/sav.conf"));
    assert_err_equal("cannot open config file /nonexistent/sav-unit/sav.conf: No such file or directory");
}

static void test_path_from_sav_config_then_default(void **state) {
    (void)state;
    settings s;
    const char *path = conf_write("[redis]\nport = 6401\n");
    setenv("SAV_CONFIG", path, 1);
    assert_int_equal(0, settings_load(&s, NULL));
    assert_string_equal(path, s.path);
    assert_int_equal(6401, s.redis_port);
    /* An explicit path wins over SAV_CONFIG. */
    setenv("SAV_CONFIG", "/nonexistent/sav-unit/sav.conf", 1);
    assert_int_equal(0, settings_load(&s, path));
    unsetenv("SAV_CONFIG");

    /* Without either, deploy/local/sav.conf relative to the working directory. */
    char cwd[PATH_MAX], dir[] = "/tmp/sav-unit-cwd-XXXXXX";
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(0, chdir(dir));
    unit_err_clear();
    int rc = settings_load(&s, NULL);
    assert_int_equal(0, chdir(cwd));
    rmdir(dir);
    assert_int_equal(-1, rc);
    assert_string_equal("deploy/local/sav.conf", s.path);
    assert_err_contains("cannot open config file deploy/local/sav.conf");
}

static void test_env_overrides_file(void **state) {
    (void)state;
    settings s;
    const char *path = conf_write("[redis]\nport = 6391\n");
    setenv("SAV_REDIS_PORT", "7000", 1);
    setenv("SAV_NOTIFICATION_TEMPLATES", "/opt/templates", 1);
    setenv("SAV_SERVICE_INSTANCE", "diag-7", 1);
    assert_int_equal(0, settings_load(&s, path));
    assert_int_equal(7000, s.redis_port);
    assert_string_equal("/opt/templates", s.templates_dir);
    assert_string_equal("diag-7", s.instance);
    char out[32];
    assert_int_equal(0, settings_get(&s, "redis", "port", out, sizeof(out)));
    assert_string_equal("7000", out);
}

static void test_env_bad_value_refused_naming_variable(void **state) {
    (void)state;
    settings s;
    const char *path = conf_write("");
    setenv("SAV_REDIS_PORT", "nope", 1);
    unit_err_clear();
    assert_int_equal(-1, settings_load(&s, path));
    assert_err_equal("SAV_REDIS_PORT: redis.port must be an integer from 0 to 65535, got \"nope\"");
    setenv("SAV_REDIS_PORT", "70000", 1);
    unit_err_clear();
    assert_int_equal(-1, settings_load(&s, path));
    assert_err_equal("SAV_REDIS_PORT: redis.port must be an integer from 0 to 65535, got \"70000\"");
}

static void test_duplicate_endpoints_refused(void **state) {
    (void)state;
    settings s;
    const char *path = conf_write("[billing]\nendpoint = tcp://127.0.0.1:5551\n");
    unit_err_clear();
    assert_int_equal(-1, settings_load(&s, path));
    assert_err_equal("intake and billing share the endpoint tcp://127.0.0.1:5551");
    unlink(conf_path);
    /* Also when the clash comes from the environment. */
    path = conf_write("");
    setenv("SAV_NOTIFICATION_ENDPOINT", "tcp://127.0.0.1:5552", 1);
    unit_err_clear();
    assert_int_equal(-1, settings_load(&s, path));
    assert_err_equal("diagnostics and notification share the endpoint tcp://127.0.0.1:5552");
}

static void test_cross_field_checks(void **state) {
    (void)state;
    load_refused("[billing]\nendpoint = inproc://billing\n",
                 "billing.endpoint must list endpoints starting with tcp:// or ipc://, separated by commas, got "
                 "\"inproc://billing\"");
    load_refused("[billing]\nendpoint = tcp://127.0.0.1:1,,tcp://127.0.0.1:2\n", "billing.endpoint must list");
    load_refused("[billing]\nendpoint = tcp://127.0.0.1:1,tcp://127.0.0.1:5551\n",
                 "intake and billing share the endpoint tcp://127.0.0.1:5551");
    load_refused("[billing]\nendpoint = tcp://127.0.0.1:1,tcp://127.0.0.1:2\nbind = tcp://127.0.0.1:3\n",
                 "billing.bind must be first, one of billing.endpoint, or a tcp:// address on the port of one of "
                 "them (the endpoint a host name, bound at its IP address), got \"tcp://127.0.0.1:3\"");
    load_refused("[billing]\nendpoint = tcp://billing-0.billing:5553\nbind = ipc:///run/billing\n", "billing.bind");
    load_refused("[billing]\nendpoint = t1,t2,t3,t4,t5,t6,t7,t8,t9\n", "billing.endpoint lists more than 8 instances");
    load_refused("[relay]\nclaim_ms = 6000\n", "relay.takeover_ms (10000) must be at least twice relay.claim_ms (6000)");
    load_refused("[bus]\nmax_frame_bytes = 2000000\n",
                 "bus.max_frame_bytes (2000000) must not exceed bus.socket_max_bytes (1048576)");
    load_refused("[redis]\nprefix = sav prod\n", "redis.prefix may contain only letters");
    load_refused("[service]\ninstance =\n", "service.instance is empty");
    load_refused("[redis]\nhost = # only a comment\n", "redis.host is empty");
    load_refused("[redis]\nport = 0\n", "redis.port must be set unless redis.host is a unix socket path");
    load_refused("[notification]\nsms_quiet_hours = 21h-8h\n", "notification.sms_quiet_hours must be off or HH:MM-HH:MM");
    load_refused("[notification]\nsms_quiet_hours = 24:00-08:00\n", "sms_quiet_hours");
    load_refused("[notification]\nsms_quiet_hours = 08:00-08:00\n", "start and end differ");
    load_refused("[notification]\nsmpp_source = SERVICE-APRES-VENTE\n", "smpp_source (1 to 11)");
    load_refused("[notification]\nmail_domain = sav example\n", "notification.mail_domain must be a domain name");
    load_refused("[notification]\nmail_domain = sav.électro.fr\n", "notification.mail_domain must be a domain name");
    load_refused("[notification]\nmail_domain = sav*.example\n", "notification.mail_domain must be a domain name");
    int start, end;
    assert_int_equal(0, settings_quiet_hours("21:30-07:45", &start, &end));
    assert_int_equal(21 * 60 + 30, start);
    assert_int_equal(7 * 60 + 45, end);
    assert_int_equal(0, settings_quiet_hours("off", &start, &end));
    assert_int_equal(-1, start);
    settings s;
    const char *path = conf_write("[redis]\nhost = /run/redis/redis.sock\nport = 0\n");
    assert_int_equal(0, settings_load(&s, path));
    assert_string_equal("/run/redis/redis.sock", s.redis_host);
    assert_int_equal(0, s.redis_port);
    path = conf_write("[billing]\nendpoint = tcp://127.0.0.1:7001, tcp://127.0.0.1:7002\nbind = tcp://127.0.0.1:7002\n");
    assert_int_equal(0, settings_load(&s, path));
    char all[SETTINGS_MAX_INSTANCES][SETTINGS_STR], bound[SETTINGS_STR];
    assert_int_equal(2, settings_endpoints(&s, SVC_BILLING, all));
    assert_string_equal("tcp://127.0.0.1:7001", all[0]);
    assert_string_equal("tcp://127.0.0.1:7002", all[1]);
    settings_bind_endpoint(&s, SVC_BILLING, bound);
    assert_string_equal("tcp://127.0.0.1:7002", bound);
    settings_bind_endpoint(&s, SVC_INTAKE, bound);
    assert_string_equal("tcp://127.0.0.1:5551", bound);
    path = conf_write("[billing]\nendpoint = tcp://billing-0.billing:5553,tcp://billing-1.billing:5553\n"
                      "bind = tcp://10.1.2.3:5553\n");
    assert_int_equal(0, settings_load(&s, path));
    settings_bind_endpoint(&s, SVC_BILLING, bound);
    assert_string_equal("tcp://10.1.2.3:5553", bound);
}

static void test_sentinels(void **state) {
    (void)state;
    settings s;
    char host[SETTINGS_MAX_SENTINELS][SETTINGS_STR];
    int port[SETTINGS_MAX_SENTINELS];
    assert_int_equal(0, settings_load(&s, conf_write("[redis]\nport = 6390\n")));
    assert_int_equal(0, settings_sentinels(&s, host, port));
    assert_int_equal(0, settings_load(&s, conf_write("[redis]\nsentinels = 10.0.0.1:26379, [::1]:26380,s3:1\n"
                                                    "master_name = sav-prod\nwait_replicas = 1\nwait_ms = 500\n")));
    assert_int_equal(3, settings_sentinels(&s, host, port));
    assert_string_equal("10.0.0.1", host[0]);
    assert_int_equal(26379, port[0]);
    assert_string_equal("::1", host[1]);
    assert_int_equal(26380, port[1]);
    assert_string_equal("s3", host[2]);
    assert_int_equal(1, port[2]);
    assert_string_equal("sav-prod", s.redis_master_name);
    load_refused("[redis]\nsentinels = 10.0.0.1\n", "redis.sentinels must be off or host:port items");
    load_refused("[redis]\nsentinels = a:26379,b:0\n", "redis.sentinels must be off or host:port items");
    load_refused("[redis]\nsentinels = a:26379,,b:1\n", "redis.sentinels must be off or host:port items");
    load_refused("[redis]\nsentinels = a:2637x\n", "redis.sentinels must be off or host:port items");
    load_refused("[redis]\nsentinels = a:65536\n", "redis.sentinels must be off or host:port items");
    load_refused("[redis]\nsentinels = a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9\n", "more than 8 sentinels");
    load_refused("[redis]\nsentinels = a:1\nmaster_name = sav prod\n", "redis.master_name");
    load_refused("[redis]\nsentinels = a:1\nhost = /run/redis.sock\nport = 0\n", "cannot also be a unix socket");
    load_refused("[redis]\nwait_replicas = 1\nwait_ms = 2000\n",
                 "redis.wait_ms (2000) must be below redis.timeout_ms (2000)");
    load_refused("[redis]\nwait_replicas = 9\n", "redis.wait_replicas");
    load_refused("[redis]\nsentinel_password = file:/etc/sav/se\xbc\xbc" "crets\n",
                 "redis.sentinel_password: the file name is not valid UTF-8");
}

static void test_get_returns_effective_values(void **state) {
    (void)state;
    settings s;
    const char *path = conf_write("[redis]\nhost = db.local\nshards = 1\n");
    assert_int_equal(0, settings_load(&s, path));
    char out[SETTINGS_STR];
    assert_int_equal(0, settings_get(&s, "redis", "host", out, sizeof(out)));
    assert_string_equal("db.local", out);
    assert_int_equal(0, settings_get(&s, "redis", "shards", out, sizeof(out)));
    assert_string_equal("1", out);
    assert_int_equal(0, settings_get(&s, "redis", "port", out, sizeof(out)));
    assert_string_equal("6390", out);
    assert_int_equal(0, settings_get(&s, "intake", "pickup_reminder_days", out, sizeof(out)));
    assert_string_equal("7,30,90", out);
    assert_int_equal(0, settings_get(&s, "diagnostics", "endpoint", out, sizeof(out)));
    assert_string_equal("tcp://127.0.0.1:5552", out);
    assert_int_equal(0, settings_get(&s, "notification", "templates", out, sizeof(out)));
    assert_string_equal("../../services/notification/templates", out);
    /* A short buffer gets a truncated, terminated value. */
    char small[5];
    assert_int_equal(0, settings_get(&s, "redis", "host", small, sizeof(small)));
    assert_string_equal("db.l", small);
    unit_err_clear();
    assert_int_equal(-1, settings_get(&s, "redis", "nope", out, sizeof(out)));
    assert_err_equal("unknown setting redis.nope");
    unit_err_clear();
    assert_int_equal(-1, settings_get(&s, "intake", "port", out, sizeof(out)));
    assert_err_equal("unknown setting intake.port");
}

static void test_resolve_path_relative_to_config_directory(void **state) {
    (void)state;
    settings s;
    memset(&s, 0, sizeof(s));
    char out[SETTINGS_STR];
    snprintf(s.path, sizeof(s.path), "/etc/sav/sav.conf");
    settings_resolve_path(&s, "catalog.json", out, sizeof(out));
    assert_string_equal("/etc/sav/catalog.json", out);
    settings_resolve_path(&s, "../../services/notification/templates", out, sizeof(out));
    assert_string_equal("/etc/sav/../../services/notification/templates", out);
    settings_resolve_path(&s, "/opt/sav/catalog.json", out, sizeof(out));
    assert_string_equal("/opt/sav/catalog.json", out);
    snprintf(s.path, sizeof(s.path), "deploy/local/sav.conf");
    settings_resolve_path(&s, "catalog.json", out, sizeof(out));
    assert_string_equal("deploy/local/catalog.json", out);
    snprintf(s.path, sizeof(s.path), "sav.conf");
    settings_resolve_path(&s, "catalog.json", out, sizeof(out));
    assert_string_equal("catalog.json", out);
    snprintf(s.path, sizeof(s.path), "/sav.conf");
    settings_resolve_path(&s, "catalog.json", out, sizeof(out));
    assert_string_equal("/catalog.json", out);
    /* Truncated to the buffer, still terminated. */
    char small[8];
    snprintf(s.path, sizeof(s.path), "/etc/sav/sav.conf");
    settings_resolve_path(&s, "catalog.json", small, sizeof(small));
    assert_string_equal("/etc/sa", small);
}

static void test_resolve_path_after_load(void **state) {
    (void)state;
    settings s;
    const char *path = conf_write("[catalog]\npath = data/catalog.json\n");
    assert_int_equal(0, settings_load(&s, path));
    char out[SETTINGS_STR];
    settings_resolve_path(&s, s.catalog_path, out, sizeof(out));
    assert_string_equal("/tmp/data/catalog.json", out);
}

static void test_text_loads_like_the_file(void **state) {
    (void)state;
    const char *text = "[redis]\nport = 6400 # test\n[billing]\npayment_reminder_days = 3,9\n";
    settings from_file, from_text;
    assert_int_equal(0, settings_load(&from_file, conf_write(text)));
    assert_int_equal(0, settings_load_text(&from_text, text, strlen(text), conf_path));
    assert_memory_equal(&from_file, &from_text, sizeof(from_file));
    assert_int_equal(0, settings_load_text(&from_text, "", 0, "empty.conf"));
    assert_int_equal(6390, from_text.redis_port);
    assert_string_equal("empty.conf", from_text.path);
    /* Bytes after a NUL are read as in a file, and errors name the text's name and line. */
    assert_int_equal(-1, settings_load_text(&from_text, "[redis]\nport = 1\0\n", 18, "mem.conf"));
    assert_err_contains("mem.conf:2: line longer than");
}

static void test_service_names_and_ids(void **state) {
    (void)state;
    assert_string_equal("intake", settings_service_name(SVC_INTAKE));
    assert_string_equal("diagnostics", settings_service_name(SVC_DIAGNOSTICS));
    assert_string_equal("billing", settings_service_name(SVC_BILLING));
    assert_string_equal("notification", settings_service_name(SVC_NOTIFICATION));
    assert_string_equal("unknown", settings_service_name(SVC_COUNT));
    assert_int_equal(SVC_INTAKE, settings_service_id("intake"));
    assert_int_equal(SVC_NOTIFICATION, settings_service_id("notification"));
    assert_int_equal(-1, settings_service_id("Intake"));
    assert_int_equal(-1, settings_service_id(""));
}

/* The HTTP SMS transport's keys: the URL template's placeholders, the listener, the callback key. */
static void test_http_sms_transport_checks(void **state) {
    (void)state;
    const char *good = "http://gw:13013/cgi-bin/sendsms?username={username}&to={to}&text={text}&dlr-url={dlr_url}";
    char text[1024];
    load_as = SVC_NOTIFICATION; /* the process that holds the callback key */
    load_refused("[notification]\nsms_transport = kannel\n", "sms_transport must be smpp or http");
    load_refused("[notification]\nhttp_listen = 127.0.0.1\n", "notification.http_listen must be host:port");
    load_refused("[notification]\nhttp_listen = 127.0.0.1:0\n", "notification.http_listen must be host:port");
    load_refused("[notification]\nhttp_listen = [::1:5564\n", "notification.http_listen must be host:port");
    load_refused("[notification]\nhttp_sms_url = ftp://gw/sendsms?to={to}&text={text}&d={dlr_url}\n",
                 "http:// or https:// URL template");
    load_refused("[notification]\nhttp_sms_url = http://gw/s?to={to}&text={text}&d={dlr_url}&x={sender}\n",
                 "unknown placeholder at \"{sender}\"");
    load_refused("[notification]\nhttp_sms_url = http://gw/s?to={to}&text={text}&d={dlr_url}&x={to\n",
                 "unknown placeholder at \"{to\"");
    load_refused("[notification]\nhttp_sms_url = http://gw/s?to={to}&text={text}\n", "must carry {to}, {text} and {dlr_url}");
    snprintf(text, sizeof(text), "[notification]\nhttp_sms_url = %s\n", good);
    load_refused(text, "needs notification.http_listen");
    snprintf(text, sizeof(text), "[notification]\nhttp_sms_url = %s\nhttp_listen = 127.0.0.1:5564\n", good);
    load_refused(text, "http_callback_key must have at least 16 characters");
    char key[] = "/tmp/sav-unit-key-XXXXXX";
    int fd = mkstemp(key);
    assert_int_equal(17, write(fd, "0123456789abcdef\n", 17));
    close(fd);
    snprintf(text, sizeof(text), "[notification]\nhttp_sms_url = %s\nhttp_listen = 127.0.0.1:5564\n"
             "http_callback_key = file:%s\nhttp_callback_url = gw.example\n", good, key);
    load_refused(text, "http_callback_url must be off or an http://");
    snprintf(text, sizeof(text), "[notification]\nsms_transport = http\nhttp_sms_url = %s\n"
             "http_listen = [::1]:5564\nhttp_callback_key = file:%s\n", good, key);
    settings s;
    assert_int_equal(0, settings_load_service(&s, conf_write(text), SVC_NOTIFICATION));
    /* Another process keeps the file's name only, and does not check what it does not hold. */
    assert_int_equal(0, settings_load(&s, conf_write(text)));
    assert_non_null(strstr(s.http_callback_key, key));
    unlink(key);
    assert_string_equal("http", s.sms_transport);
    assert_string_equal(good, s.http_sms_url);
    assert_string_equal("off", s.http_callback_url);
    assert_int_equal(60000, s.http_sms_turn_ms);
}

/* Secrets come from files readable by their owner (and group) only, never from the configuration itself. */
static void test_secrets_from_files(void **state) {
    (void)state;
    char secret[] = "/tmp/sav-unit-secret-XXXXXX", text[512];
    int fd = mkstemp(secret);
    assert_true(fd >= 0);
    assert_int_equal(9, write(fd, "s3cr3tpw\n", 9));
    close(fd);
    load_refused_at("[notification]\nsmpp_password = s3cr3t\n", 2,
                    "notification.smpp_password is a secret: give it as file:PATH (a file only the service's user can "
                    "read), never in the configuration itself");
    snprintf(text, sizeof(text), "[notification]\nsmpp_password = file:%s\n", secret);
    settings s;
    load_as = SVC_NOTIFICATION;
    chmod(secret, 0604);
    load_refused(text, "is readable by others: chmod o-rwx");
    chmod(secret, 0640);
    assert_int_equal(0, settings_load_service(&s, conf_write(text), SVC_NOTIFICATION));
    assert_string_equal("s3cr3tpw", s.smpp_password);
    char shown[128];
    assert_int_equal(0, settings_get(&s, "notification", "smpp_password", shown, sizeof(shown)));
    assert_null(strstr(shown, "s3cr3t"));
    /* savctl and the other services never read it: they only know where it is. */
    chmod(secret, 0000);
    assert_int_equal(0, settings_load(&s, conf_write(text)));
    assert_int_equal(0, settings_load_service(&s, conf_write(text), SVC_BILLING));
    assert_int_equal(0, settings_get(&s, "notification", "smpp_password", shown, sizeof(shown)));
    assert_non_null(strstr(shown, secret));
    chmod(secret, 0600);
    assert_int_equal(0, settings_load(&s, conf_write("[notification]\nsmpp_password = none\n")));
    assert_string_equal("", s.smpp_password);
    assert_int_equal(0, settings_get(&s, "notification", "smpp_password", shown, sizeof(shown)));
    assert_string_equal("none", shown);
    /* Each service's own Redis user needs its password; the others' are not its concern. */
    load_as = SVC_BILLING;
    load_refused("[billing]\nredis_user = sav-billing\n", "billing.redis_user sav-billing needs "
                 "billing.redis_password");
    assert_int_equal(0, settings_load(&s, conf_write("[billing]\nredis_user = sav-billing\n")));
    load_refused("[billing]\nredis_user = sav billing\n", "billing.redis_user:");
    load_as = SVC_NOTIFICATION;
    setenv("SAV_NOTIFICATION_HTTP_SMS_PASSWORD", "literal", 1);
    load_refused("", "SAV_NOTIFICATION_HTTP_SMS_PASSWORD: notification.http_sms_password is a secret");
    unsetenv("SAV_NOTIFICATION_HTTP_SMS_PASSWORD");
    FILE *f = fopen(secret, "w");
    fputs("two\nlines\n", f);
    fclose(f);
    load_refused(text, "must hold one line of printable UTF-8");
    unlink(secret);
    load_refused(text, "No such file or directory");
}

static void test_security_keys(void **state) {
    (void)state;
    settings s;
    assert_int_equal(0, settings_load(&s, conf_write("")));
    assert_string_equal("on", s.curve);
    assert_string_equal("keys", s.keys_dir);
    assert_string_equal("keys/clients", s.clients_file);
    assert_string_equal("none", s.identity);
    assert_int_equal(0, settings_load(&s, conf_write("[security]\ncurve = off\nkeys_dir = /etc/sav/keys\n"
                                                     "clients = /etc/sav/clients\n[client]\nidentity = tech-07\n")));
    assert_string_equal("off", s.curve);
    assert_string_equal("/etc/sav/keys", s.keys_dir);
    assert_string_equal("/etc/sav/clients", s.clients_file);
    assert_string_equal("tech-07", s.identity);
    load_refused("[security]\ncurve = yes\n", "security.curve must be on or off, got \"yes\"");
    load_refused("[client]\nidentity = ../admin\n", "client.identity: identity name \"../admin\"");
    load_refused_at("[security]\nsecret_key = abc\n", 2, "unknown setting security.secret_key");
}

#define SETTINGS_TEST(f) cmocka_unit_test_setup_teardown(f, settings_setup, settings_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        SETTINGS_TEST(test_empty_file_gives_every_default),
        SETTINGS_TEST(test_values_are_read_with_comments_spaces_and_crlf),
        SETTINGS_TEST(test_unknown_section_refused_with_file_and_line),
        SETTINGS_TEST(test_unknown_key_refused_with_file_and_line),
        SETTINGS_TEST(test_bad_integer_refused),
        SETTINGS_TEST(test_integer_out_of_range_refused),
        SETTINGS_TEST(test_syntax_errors_refused),
        SETTINGS_TEST(test_overlong_line_and_value_refused),
        SETTINGS_TEST(test_missing_file_refused),
        SETTINGS_TEST(test_path_from_sav_config_then_default),
        SETTINGS_TEST(test_env_overrides_file),
        SETTINGS_TEST(test_env_bad_value_refused_naming_variable),
        SETTINGS_TEST(test_duplicate_endpoints_refused),
        SETTINGS_TEST(test_cross_field_checks),
        SETTINGS_TEST(test_sentinels),
        SETTINGS_TEST(test_get_returns_effective_values),
        SETTINGS_TEST(test_resolve_path_relative_to_config_directory),
        SETTINGS_TEST(test_resolve_path_after_load),
        SETTINGS_TEST(test_text_loads_like_the_file),
        SETTINGS_TEST(test_service_names_and_ids),
        SETTINGS_TEST(test_http_sms_transport_checks),
        SETTINGS_TEST(test_security_keys),
        SETTINGS_TEST(test_secrets_from_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
