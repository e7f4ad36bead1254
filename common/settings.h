/* settings: the one configuration file every binary reads.
 * Format: INI ("[section]" then "key = value"; '#' at the start of a line or
 * after whitespace starts a comment; values may not be empty).
 * Every key is known here with its type and bounds: an unknown key, a bad
 * value or a syntax error is refused with the file, line and reason, so a
 * typo never silently falls back to a default. Any key can be overridden by
 * the environment variable SAV_<SECTION>_<KEY> (upper case). A secret (a password, a shared key) is never written
 * in the file: its value is file:PATH, a file readable by its owner and group only, or none. */
#ifndef SAV_SETTINGS_H
#define SAV_SETTINGS_H

#include <stddef.h>

enum service_id { SVC_INTAKE = 0, SVC_DIAGNOSTICS, SVC_BILLING, SVC_NOTIFICATION, SVC_COUNT };

#define SETTINGS_STR 256
#define SETTINGS_MAX_DAYS 8

/* A schedule in days, e.g. "7,30,90": strictly increasing, each 1..3650. */
typedef struct settings_days {
    int n;
    int day[SETTINGS_MAX_DAYS];
} settings_days;

typedef struct settings {
    char path[SETTINGS_STR];          /* the file these were read from */
    int self;                         /* the service this process is (SVC_COUNT for tools): its secrets are read */
    char redis_user[SVC_COUNT][64];   /* each service's Redis ACL user, or "none" (the default user) */
    char redis_password[SVC_COUNT][SETTINGS_STR]; /* its password: the secret for its own service, else the file */
    char redis_host[SETTINGS_STR];    /* host name or IP; or a unix socket path starting with '/' */
    int redis_port;
    int redis_timeout_ms;             /* connect and command timeout */
    int redis_shards;                 /* number of hash tags ticket keys are spread over */
    char redis_prefix[32];            /* every key starts with this */
    char redis_sentinels[SETTINGS_STR]; /* "off", or "host:port,host:port": the master is asked of them */
    char redis_master_name[64];       /* the name the sentinels monitor the master under */
    char redis_sentinel_password[SETTINGS_STR]; /* the sentinels' requirepass, read from file:PATH; "" for none */
    int redis_wait_replicas;          /* a write counts once this many replicas have it (WAIT); 0: the master's word */
    int redis_wait_ms;                /* how long a write waits for them before it is reported unacknowledged */
    int dedup_ttl_days;               /* how long request and message ids are remembered */
    char endpoint[SVC_COUNT][SETTINGS_STR]; /* each service's instances: "tcp://a:5551,tcp://b:5551"; clients
                                             * connect to all of them */
    char bind[SVC_COUNT][SETTINGS_STR];     /* the one this instance binds: one of them, or "first" */
    int relay_claim_ms;               /* how often a relay keeps what it holds and looks for what a dead one left */
    int relay_takeover_ms;            /* an outbox entry idle this long belongs to a relay that died: taken over */
    char instance[64];                /* this instance's name, stable across restarts */
    int max_frame_bytes;              /* envelope limit; bigger frames get an error reply */
    int socket_max_bytes;             /* ZMQ_MAXMSGSIZE: above it libzmq drops the connection */
    int relay_batch;                  /* entries read from an outbox per Redis call */
    int relay_window;                 /* messages in flight per destination */
    int relay_ack_timeout_ms;         /* first resend after this long without an ACK */
    int relay_backoff_max_ms;         /* resend interval cap */
    int relay_max_attempts;           /* then dead-letter */
    int relay_scan_ms;                /* how often an idle relay looks for entries it was not told about */
    int request_timeout_ms;           /* savctl: wait per attempt */
    int request_attempts;             /* savctl: attempts before "unavailable" */
    char identity[72];                /* savctl: the identity whose key pair it uses, or "none" */
    char curve[8];                    /* on: CURVE on every socket, clients admitted by ZAP and roles; off: plain */
    char keys_dir[SETTINGS_STR];      /* NAME.pub and NAME.key of every service and operator identity */
    char clients_file[SETTINGS_STR];  /* the authorised operators: "PUBLIC-KEY ROLE NAME" lines */
    char catalog_path[SETTINGS_STR];
    char templates_dir[SETTINGS_STR];
    char smtp_url[SETTINGS_STR];      /* smtp://host:port, or "off": e-mails are then recorded, not sent */
    char smtp_tls[16];                /* none, or starttls (required, never opportunistic) */
    char mail_from[SETTINGS_STR];
    char mail_from_name[SETTINGS_STR];
    char mail_domain[128];            /* right-hand side of Message-IDs */
    int smtp_timeout_ms;
    int mail_retry_max_ms;            /* backoff cap between attempts of a temporary failure */
    int mail_max_attempts;            /* then the e-mail is failed, with its last reason */
    int mail_stale_ms;                /* a send unconfirmed this long (the sender died) is tried again */
    char smpp_host[SETTINGS_STR];     /* the SMSC, or "off": SMS are then recorded, not sent */
    int smpp_port;
    char smpp_system_id[SETTINGS_STR];
    char smpp_password[SETTINGS_STR]; /* read from file:PATH; "" for none */
    char smpp_source[SETTINGS_STR];   /* alphanumeric sender shown on the phone */
    int smpp_window;                  /* submit_sm awaiting their response at most */
    int smpp_tps;                     /* submit_sm per second at most (the SMSC's contract) */
    int smpp_enquire_ms;              /* link check when idle */
    int smpp_response_ms;             /* a response later than this means the link is dead */
    char sms_transport[16];           /* smpp (smpp_host) or http (http_sms_url, e.g. Kannel's sendsms) */
    char http_sms_url[512];           /* the gateway's URL template ({to}, {text}, ...), or "off" */
    char http_sms_username[SETTINGS_STR];
    char http_sms_password[SETTINGS_STR]; /* read from file:PATH; "" for none */
    int http_sms_timeout_ms;          /* one request to the gateway */
    int http_sms_tps;                 /* requests per second at most */
    int http_sms_turn_ms;             /* a recipient's next SMS waits this long at most for the report on the last */
    char http_listen[SVC_COUNT][SETTINGS_STR]; /* host:port of each service's HTTP listener (health, metrics; the
                                                * SMS gateway's calls for notification), or "off" */
    char http_callback_url[SETTINGS_STR]; /* the base URL the gateway calls; "off": http://<http_listen> */
    char http_callback_key[SETTINGS_STR]; /* the key the gateway's calls for customers' replies carry (from its file) */
    int sms_retry_max_ms;             /* backoff cap between attempts of a temporary failure */
    int sms_max_attempts;             /* then the SMS is failed, with its last reason */
    int sms_stale_ms;                 /* a submit unconfirmed this long (the sender died) is tried again */
    char sms_quiet_hours[32];         /* "HH:MM-HH:MM" Europe/Paris, or "off": no SMS then but urgent ones */
    char sms_urgent_events[SETTINGS_STR]; /* events whose SMS go even in quiet hours ("a,b"), or "none" */
    char log_level[16];
    int vat_basis_points;             /* 2000 = 20 % */
    int quote_validity_days;          /* a quote stands this long */
    int quote_reminder_days;          /* the customer is reminded this many days before it expires */
    int business_payment_days;        /* businesses pay this many days after the invoice (B3: at most 60) */
    settings_days payment_reminders;  /* days past due of each reminder; after the last, the formal notice */
    int ecb_rate_bp;                  /* ECB refinancing rate, for B2B late penalties */
    int late_penalty_points_bp;       /* added to it (B3: 10 points = 1000) */
    int recovery_indemnity_cents;     /* B3: EUR 40 per late business invoice */
    int legal_interest_bp;            /* consumers: legal interest rate, owed from the formal notice (B4) */
    int warranty_labour_rate_cents;   /* per hour, paid by the manufacturer for warranty repairs */
    int diagnostic_fee_waived;        /* 1: the diagnostic fee is not charged when the quote is accepted */
    char company_name[SETTINGS_STR];  /* the seller on quotes and invoices */
    char company_address[SETTINGS_STR];
    char company_siret[32];
    char company_vat[32];
    char default_centre[64];          /* centre of a ticket opened without --centre */
    int sla_days[5];                  /* per kind: repair, installation, commissioning, preventive_maintenance, assistance */
    settings_days pickup_reminders;   /* days in `ready` after which the customer is reminded */
    int unclaimed_days;               /* then flagged for the judicial procedure (D4), never disposed of */
    int complaint_deadline_days;      /* default deadline of a complaint without --notice-deadline */
    int complaint_escalate_days;      /* escalate an open complaint this many days before its deadline */
    int mediator_after_days;          /* offer the consumer mediator when a complaint stays open this long */
    char mediator[SETTINGS_STR];      /* the consumer mediator's contact (D3) */
    int maintenance_lead_days;        /* create a maintenance visit ticket this many days before it is due */
    int scheduler_ms;                 /* how often intake runs its timers */
    int archive_after_days;           /* closed tickets unchanged this long leave Redis for the archive (0: never) */
    char archive_dir[SETTINGS_STR];   /* where intake writes the archive: one compressed file per month */
    int pack_after_days;              /* settled closed tickets unchanged this long are packed (0: once settled) */
    int catalog_check_ms;             /* how often a service looks for a newer catalog */
} settings;

#define SETTINGS_MAX_INSTANCES 8

/* Splits a service's endpoint list into out (at most SETTINGS_MAX_INSTANCES, each SETTINGS_STR bytes); returns
 * how many. */
int settings_endpoints(const settings *s, enum service_id id, char out[][SETTINGS_STR]);

/* Writes the endpoint this process binds as service id (SERVICE.bind, "first" meaning the list's first). */
void settings_bind_endpoint(const settings *s, enum service_id id, char out[SETTINGS_STR]);

/* Parses notification.sms_quiet_hours into Europe/Paris minutes of the day (-1, -1 for "off"; start and end may
 * be NULL to check only); 0 or -1 with err. */
int settings_quiet_hours(const char *spec, int *start, int *end);

/* Loads path (NULL: $SAV_CONFIG, else deploy/local/sav.conf), applies the environment, validates; 0 or -1 with err.
 * As a tool's (savctl's): the services' secrets are not read, only their files named. */
int settings_load(settings *s, const char *path);

/* Loads the configuration as the service self does: its own secrets are read from their files. 0 or -1 with err. */
int settings_load_service(settings *s, const char *path, enum service_id self);

/* Like settings_load, from the len bytes of text; name stands for the file (errors, relative paths). */
int settings_load_text(settings *s, const char *text, size_t len, const char *name);

#define SETTINGS_MAX_SENTINELS 8

/* Splits redis.sentinels into hosts and ports (at most SETTINGS_MAX_SENTINELS); returns how many, 0 for off. */
int settings_sentinels(const settings *s, char host[][SETTINGS_STR], int port[]);

/* Returns the service's name ("intake", ...) for an id. */
const char *settings_service_name(enum service_id id);

/* Returns the service id for a name, or -1. */
int settings_service_id(const char *name);

/* Writes the effective value of section.key into out; -1 with err if the key is unknown. */
int settings_get(const settings *s, const char *section, const char *key, char *out, size_t outlen);

/* Resolves a path from the config relative to the config file's directory, unless absolute. */
void settings_resolve_path(const settings *s, const char *path, char *out, size_t outlen);

#endif
