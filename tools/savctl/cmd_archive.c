/* savctl check, archive run, archive pack, archive search: commands served by intake that
 * may take longer than a request's usual timeout (they read the whole data
 * set or the archive files), sent once with their own timeout. */
#include "savctl.h"
#include "clock.h"
#include "err.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARCHIVE_TIMEOUT_S 300
#define ARCHIVE_MAX_ARGS 8

const char savctl_help_check[] =
    "NAME\n    savctl check - verify the data set: tickets, indexes, invoice numbers, archive\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--identity NAME] [--json] check [--timeout SECONDS]\n\n"
    "DESCRIPTION\n"
    "    Intake reads the whole data set and reports every inconsistency, for instance after a\n"
    "    restore from a backup (README, Operating SAV). It checks that every ticket of the tickets\n"
    "    index exists with its timeline (a packed ticket: with a packed value that inflates and\n"
    "    matches its digest), is in the index of its state (state:<s>) and in its\n"
    "    customer's and product's, and that its customer and product exist; that every\n"
    "    notification listed for a ticket exists; that each state index names only tickets in that\n"
    "    state; that each year's invoice numbers FAC-YYYY-000001.. are continuous up to\n"
    "    seq:invoice:<year>, each invoice indexed and its ticket in Redis or archived; that every\n"
    "    archived ticket is in no Redis index and has its line in its month's archive file, and that\n"
    "    no archive file holds a ticket Redis knows nothing of. It changes nothing. Intake serves\n"
    "    nothing else while it runs (about a second per ten thousand tickets). Roles: manager,\n"
    "    admin.\n\n"
    "OPTIONS\n"
    "    --timeout SECONDS    how long to wait for the answer (default 300)\n\n"
    "OUTPUT\n"
    "    The counts (tickets per state, notifications, packed tickets and the bytes of their values,\n"
    "    customers, invoices per year with their\n"
    "    sequence, archived tickets, archive files and lines), then each problem, one per line, and\n"
    "    \"consistent\" or \"INCONSISTENT\". --json: {\"consistent\", \"complete\", \"counts\": {...},\n"
    "    \"problems\": [...] (at most 500), \"problems_total\", \"elapsed_ms\"}.\n\n"
    "EXIT STATUS\n    0 consistent, 2 inconsistent (the problems are listed), 4 intake unavailable,\n"
    "    6 forbidden.\n";

const char savctl_help_archive_run[] =
    "NAME\n    savctl archive run - archive the closed tickets that are due now\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--identity NAME] [--json] archive run [--limit N] [--timeout SECONDS]\n\n"
    "DESCRIPTION\n"
    "    Does at once what intake's timer does every intake.scheduler_ms: closed and cancelled\n"
    "    tickets whose last change is older than intake.archive_after_days (730 by default) leave\n"
    "    Redis. Each one's whole record (ticket, timeline, pre-diagnosis, coverage, verdicts, quotes,\n"
    "    notifications, complaints, the ids of its invoices and claim) is written as one JSON line\n"
    "    to intake.archive_dir/YYYY-MM.jsonl.gz, the month of its closure (Europe/Paris), fsynced and\n"
    "    committed, and only then removed from Redis and from every index, one atomic call per ticket,\n"
    "    provided it did not change meanwhile. Invoices and claims stay in Redis (legal records). A\n"
    "    ticket stays while a complaint about it is open, an invoice unpaid, a message to its customer\n"
    "    still being sent, or parts reserved for it. Roles: manager, admin.\n\n"
    "OPTIONS\n"
    "    --limit N            archive at most N tickets (default 1000, at most 100000)\n"
    "    --timeout SECONDS    how long to wait for the answer (default 300)\n\n"
    "OUTPUT\n"
    "    What was archived, per month's file, and what stayed and why. --json: {\"dir\", \"cutoff\",\n"
    "    \"after_days\", \"examined\", \"archived\", \"already_removed\", \"rewrites_avoided\" (records a\n"
    "    crash left written and not removed, found in the file and not written again), \"changed\",\n"
    "    \"kept\", \"failed\", \"files\": {month: tickets}, \"bytes_written\" (uncompressed),\n"
    "    \"discarded_bytes\" (an append a crash cut, cut off), \"kept_sample\": [{ticket, why}],\n"
    "    \"more\", \"error\"}.\n\n"
    "EXIT STATUS\n    0 done, 1 usage, 2 archiving is off, 4 intake unavailable or another process is archiving,\n"
    "    6 forbidden.\n";

const char savctl_help_archive_pack[] =
    "NAME\n    savctl archive pack - pack the settled closed tickets that are due now\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--identity NAME] [--json] archive pack [--limit N] [--timeout SECONDS]\n\n"
    "DESCRIPTION\n"
    "    Does at once what intake's timer does every intake.scheduler_ms: a closed or cancelled\n"
    "    ticket that has settled (no complaint open, no invoice unpaid, no message to its customer\n"
    "    still being sent, no parts reserved) and has not changed for intake.pack_after_days (2 by\n"
    "    default; 0: as soon as it settles) keeps in Redis a trimmed ticket hash and one compressed\n"
    "    value instead of its timeline, pre-diagnosis, coverage, verdicts, quotes and messages, one\n"
    "    atomic call per ticket, provided it did not change meanwhile. It still shows, lists and\n"
    "    counts exactly as before (savctl ticket show, ticket list, customer show, check); what may\n"
    "    still happen to it (a complaint, a payment or credit note, its customer's erasure,\n"
    "    archiving) still does. A packed ticket written to since is packed again, whole. Failed\n"
    "    messages and calls to make stay out of the value, as do SMS whose delivery report may\n"
    "    still come (7 days). Roles: manager, admin.\n\n"
    "OPTIONS\n"
    "    --limit N            pack at most N tickets (default 1000, at most 100000)\n"
    "    --timeout SECONDS    how long to wait for the answer (default 300)\n\n"
    "OUTPUT\n"
    "    How many tickets were packed and the bytes of their records before and after\n"
    "    compression, and what stayed and why. --json: {\"cutoff\", \"after_days\", \"dictionary\",\n"
    "    \"examined\", \"packed\", \"repacked\" (packed again after a write), \"changed\" (written to\n"
    "    while being packed: left for the next run), \"kept\", \"failed\", \"payload_bytes\",\n"
    "    \"packed_bytes\", \"kept_sample\": [{ticket, why}], \"more\", \"error\"}.\n\n"
    "EXIT STATUS\n    0 done, 1 usage, 2 a malformed --limit, 4 intake unavailable, 6 forbidden.\n";

const char savctl_help_archive_search[] =
    "NAME\n    savctl archive search - find archived tickets and show them\n\n"
    "SYNOPSIS\n"
    "    savctl [--config FILE] [--identity NAME] [--json] archive search [--ticket T-YYYY-NNNNNN]\n"
    "           [--customer C-NNNNNN] [--serial SN] [--from YYYY-MM] [--to YYYY-MM] [--limit N]\n"
    "           [--timeout SECONDS]\n\n"
    "DESCRIPTION\n"
    "    Intake reads the archive files of the months from --from to --to (all by default; the\n"
    "    month of --ticket when Redis knows it) and lists the archived tickets that match every\n"
    "    criterion given, once each even if a crash made a file hold a record twice. The customer\n"
    "    is shown as Redis holds them now: an erased customer's messages show no recipient, subject\n"
    "    or text. Roles: front_desk, manager, admin.\n\n"
    "OPTIONS\n"
    "    --ticket T-YYYY-NNNNNN  one ticket: shown in full, as savctl ticket show shows a ticket\n"
    "    --customer C-NNNNNN     one customer's tickets\n"
    "    --serial SN             one product's tickets\n"
    "    --from YYYY-MM          the first month of closure to read\n"
    "    --to YYYY-MM            the last one\n"
    "    --limit N               at most N tickets (default 50, at most 1000; fewer when their records\n"
    "                            would not fit in half of bus.socket_max_bytes: \"more\" then says so)\n"
    "    --timeout SECONDS       how long to wait for the answer (default 300)\n\n"
    "OUTPUT\n"
    "    One ticket (--ticket): its whole record as savctl ticket show prints it, and the file it is\n"
    "    in. Otherwise a table: id, month, state, outcome, kind, customer_id, serial, closed. --json:\n"
    "    {\"tickets\": [the records, each with \"file\", \"confirmed\" (false: a record whose archived\n"
    "    entry Redis lost) and \"customer\"], \"count\", \"more\", \"months_read\", \"lines_read\",\n"
    "    \"duplicates_hidden\", \"unreadable_lines\", \"uncommitted_bytes\"}.\n\n"
    "EXIT STATUS\n    0 done (also when nothing matches), 1 usage, 2 a malformed criterion, 3 --ticket not\n"
    "    found, 4 intake unavailable, 6 forbidden.\n";

/* Sends Command name with its nargs name/value pairs once, waiting timeout_s; *doc is the result. */
static int archive_command(savctl *ctl, const char *name, const char **args, size_t nargs, long timeout_s,
                           json_t **doc) {
    Sav__Field cells[ARCHIVE_MAX_ARGS], *ptrs[ARCHIVE_MAX_ARGS];
    Sav__Command cmd = SAV__COMMAND__INIT;
    char request_id[ENVELOPE_ID_LEN];
    for (size_t i = 0; i < nargs; i++) {
        sav__field__init(&cells[i]);
        cells[i].name = (char *)args[2 * i], cells[i].value = (char *)args[2 * i + 1];
        ptrs[i] = &cells[i];
    }
    cmd.name = (char *)name;
    envelope_new_id(request_id);
    cmd.request_id = request_id;
    cmd.n_args = nargs, cmd.args = ptrs;
    /* A second attempt would run it again while intake is still busy with the first. */
    ctl->cfg.request_timeout_ms = (int)(timeout_s * 1000);
    ctl->cfg.request_attempts = 1;
    Sav__Envelope *reply;
    *doc = NULL;
    int rc = savctl_request(ctl, SVC_INTAKE, SAV__MESSAGE_TYPE__COMMAND, &cmd.base, NULL, &reply);
    if (rc != SAVCTL_OK) return rc;
    Sav__CommandResult *res = reply->type == SAV__MESSAGE_TYPE__COMMAND_RESULT
                                  ? (Sav__CommandResult *)envelope_body(reply, &sav__command_result__descriptor)
                                  : NULL;
    *doc = res ? json_loads(res->json, 0, NULL) : NULL;
    if (res) sav__command_result__free_unpacked(res, NULL);
    envelope_free(reply);
    if (!*doc) {
        fprintf(stderr, "savctl: intake sent an unexpected reply\n");
        return SAVCTL_INTERNAL;
    }
    return SAVCTL_OK;
}

/* Parses --timeout SECONDS (and --limit N when limit is not NULL); 0 or the usage exit code. */
static int archive_options(const char *command, int argc, char **argv, long *timeout_s, const char **limit) {
    static const struct option opts[] = {{"timeout", required_argument, 0, 't'}, {"limit", required_argument, 0, 'l'},
                                         {0, 0, 0, 0}};
    int c;
    *timeout_s = ARCHIVE_TIMEOUT_S;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        if (c == 't') {
            *timeout_s = strtol(optarg, &end, 10);
            if (*end || *timeout_s < 1 || *timeout_s > 86400)
                return savctl_usage_error(command, "--timeout takes seconds, 1 to 86400");
        } else if (c == 'l' && limit) {
            *limit = optarg;
        } else {
            return savctl_usage_error(command, "unknown option");
        }
    }
    if (optind < argc) return savctl_usage_error(command, "unexpected argument \"%s\"", argv[optind]);
    return 0;
}

static const char *archive_str(const json_t *o, const char *name) {
    return json_string_value(json_object_get(o, name)) ?: "";
}

static long long archive_int(const json_t *o, const char *name) {
    return (long long)json_integer_value(json_object_get(o, name));
}

int savctl_cmd_check(savctl *ctl, int argc, char **argv) {
    long timeout_s;
    json_t *doc;
    int rc = archive_options("check", argc, argv, &timeout_s, NULL);
    if (rc == 0) rc = archive_command(ctl, "check", NULL, 0, timeout_s, &doc);
    if (rc != SAVCTL_OK) return rc;
    int consistent = json_is_true(json_object_get(doc, "consistent"));
    if (ctl->json) {
        savctl_print_json(doc);
        return consistent ? SAVCTL_OK : SAVCTL_REJECTED;
    }
    const json_t *counts = json_object_get(doc, "counts"), *v;
    const char *k;
    printf("%-24s %lld  (", "tickets", archive_int(counts, "tickets"));
    int first = 1;
    json_object_foreach((json_t *)json_object_get(counts, "states"), k, v) {
        printf("%s%s %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
        first = 0;
    }
    printf(")\n%-24s %lld\n%-24s %lld  (%lld bytes for %lld of records)\n%-24s %lld\n", "notifications",
           archive_int(counts, "notifications"), "packed", archive_int(counts, "packed"),
           archive_int(counts, "packed_bytes"), archive_int(counts, "packed_payload_bytes"), "customers",
           archive_int(counts, "customers"));
    json_object_foreach((json_t *)json_object_get(counts, "invoices"), k, v) {
        char label[32];
        snprintf(label, sizeof(label), "invoices %s", k);
        printf("%-24s %lld (seq:invoice:%s = %lld)\n", label, archive_int(v, "indexed"), k, archive_int(v, "seq"));
    }
    printf("%-24s %lld  in %lld file(s) of %s: %lld line(s), %lld duplicate(s), %lld superseded\n", "archived",
           archive_int(counts, "archived"), archive_int(counts, "archive_files"), archive_str(counts, "archive_dir"),
           archive_int(counts, "archive_lines"), archive_int(counts, "archive_duplicate_lines"),
           archive_int(counts, "archive_superseded_lines"));
    size_t i;
    json_array_foreach(json_object_get(doc, "problems"), i, v) printf("problem: %s\n", json_string_value(v));
    long long total = archive_int(doc, "problems_total");
    if ((long long)json_array_size(json_object_get(doc, "problems")) < total)
        printf("problem: ... and %lld more\n", total - (long long)json_array_size(json_object_get(doc, "problems")));
    if (consistent)
        printf("consistent\n");
    else
        printf("INCONSISTENT: %lld problem(s)%s\n", total,
               json_is_true(json_object_get(doc, "complete")) ? "" : " (the check could not read everything)");
    json_decref(doc);
    return consistent ? SAVCTL_OK : SAVCTL_REJECTED;
}

/* Runs one of intake's batches (archive.run, archive.pack) with --timeout and --limit, and prints its reply under
 * --json. Returns SAVCTL_OK with *doc to show as text (the caller ends with archive_batch_end), SAVCTL_OK with *doc
 * NULL when printed already, or the exit code. */
static int archive_batch(savctl *ctl, const char *command, const char *name, int argc, char **argv, json_t **doc) {
    long timeout_s;
    const char *limit = NULL, *args[2];
    *doc = NULL;
    int rc = archive_options(command, argc, argv, &timeout_s, &limit);
    args[0] = "limit", args[1] = limit;
    if (rc == 0) rc = archive_command(ctl, name, args, limit ? 1 : 0, timeout_s, doc);
    if (rc == SAVCTL_OK && ctl->json) {
        savctl_print_json(*doc);
        *doc = NULL;
    }
    return rc;
}

/* Shows the sample of tickets a batch kept in Redis and its error if any; frees doc. */
static void archive_batch_end(json_t *doc) {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "kept_sample"), i, v)
        printf("  kept %s: %s\n", archive_str(v, "ticket"), archive_str(v, "why"));
    if (json_is_string(json_object_get(doc, "error"))) printf("error: %s\n", archive_str(doc, "error"));
    json_decref(doc);
}

int savctl_cmd_archive_run(savctl *ctl, int argc, char **argv) {
    json_t *doc;
    int rc = archive_batch(ctl, "archive run", "archive.run", argc, argv, &doc);
    if (rc != SAVCTL_OK || !doc) return rc;
    printf("archived %lld ticket(s) closed before %s into %s", archive_int(doc, "archived"), archive_str(doc, "cutoff"),
           archive_str(doc, "dir"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(doc, "files"), k, v) printf("  %s: %lld", k, (long long)json_integer_value(v));
    printf("\n%lld examined, %lld kept in Redis%s\n", archive_int(doc, "examined"), archive_int(doc, "kept"),
           json_is_true(json_object_get(doc, "more")) ? "; more are due: run it again" : "");
    archive_batch_end(doc);
    return SAVCTL_OK;
}

int savctl_cmd_archive_pack(savctl *ctl, int argc, char **argv) {
    json_t *doc;
    int rc = archive_batch(ctl, "archive pack", "archive.pack", argc, argv, &doc);
    if (rc != SAVCTL_OK || !doc) return rc;
    printf("packed %lld ticket(s) unchanged since %s: %lld bytes of records into %lld (dictionary %lld)\n",
           archive_int(doc, "packed"), archive_str(doc, "cutoff"), archive_int(doc, "payload_bytes"),
           archive_int(doc, "packed_bytes"), archive_int(doc, "dictionary"));
    printf("%lld examined, %lld packed again after a write, %lld kept as they are%s\n", archive_int(doc, "examined"),
           archive_int(doc, "repacked"), archive_int(doc, "kept"),
           json_is_true(json_object_get(doc, "more")) ? "; more are due: run it again" : "");
    archive_batch_end(doc);
    return SAVCTL_OK;
}

/* ---- an archived record shown as `ticket show` shows a ticket ------------- */

/* The string members of an object as Fields (pointing into it); caller frees the array. */
static Sav__Field **archive_fields(const json_t *o, size_t *n) {
    *n = 0;
    size_t size = json_object_size(o);
    Sav__Field **out = calloc(size + 1, sizeof(*out) + sizeof(Sav__Field));
    if (!out) return NULL;
    Sav__Field *cells = (Sav__Field *)(out + size + 1);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (!json_is_string(v)) continue;
        sav__field__init(&cells[*n]);
        cells[*n].name = (char *)k, cells[*n].value = (char *)json_string_value(v);
        out[*n] = &cells[*n];
        (*n)++;
    }
    return out;
}

/* The pieces of a TicketView built from a record, freed together. */
typedef struct archive_view {
    Sav__TicketView v;
    Sav__TimelineEntry *timeline;
    Sav__NotificationView *notifs;
    Sav__Section *complaints;
    Sav__Field invoice_cell;
} archive_view;

static void archive_view_free(archive_view *a) {
    free(a->v.ticket), free(a->v.prediagnosis), free(a->v.coverage), free(a->v.verdict), free(a->v.customer);
    free(a->v.quote), free(a->v.invoice), free(a->v.timeline), free(a->v.notifications), free(a->timeline);
    free(a->notifs);
    for (size_t i = 0; i < a->v.n_complaints; i++) free(a->complaints[i].fields);
    free(a->v.complaints), free(a->complaints);
}

static int archive_view_build(const json_t *rec, archive_view *a) {
    memset(a, 0, sizeof(*a));
    sav__ticket_view__init(&a->v);
    Sav__TicketView *v = &a->v;
    v->ticket = archive_fields(json_object_get(rec, "ticket"), &v->n_ticket);
    v->prediagnosis = archive_fields(json_object_get(rec, "prediagnosis"), &v->n_prediagnosis);
    v->coverage = archive_fields(json_object_get(rec, "coverage"), &v->n_coverage);
    v->verdict = archive_fields(json_object_get(rec, "verdict"), &v->n_verdict);
    v->customer = archive_fields(json_object_get(rec, "customer"), &v->n_customer);
    v->quote = archive_fields(json_object_get(rec, "quote"), &v->n_quote);
    /* The quote's summary, as ticket show gives it: the whole document is in the record (--json). */
    static const char *const summary[] = {"version", "status", "valid_until", "gross_cents", NULL};
    size_t kept = 0;
    for (size_t i = 0; v->quote && i < v->n_quote; i++)
        for (const char *const *k = summary; *k; k++)
            if (strcmp(v->quote[i]->name, *k) == 0) v->quote[kept++] = v->quote[i];
    v->n_quote = kept;
    const char *invoice = json_string_value(json_object_get(json_object_get(rec, "invoices"), "repair"))
                              ?: json_string_value(json_object_get(json_object_get(rec, "invoices"), "diagnostic"));
    if (invoice) {
        v->invoice = calloc(1, sizeof(*v->invoice));
        sav__field__init(&a->invoice_cell);
        a->invoice_cell.name = "id", a->invoice_cell.value = (char *)invoice;
        if (v->invoice) v->invoice[0] = &a->invoice_cell, v->n_invoice = 1;
    }
    const json_t *tl = json_object_get(rec, "timeline"), *nl = json_object_get(rec, "notifications");
    const json_t *cl = json_object_get(rec, "complaints");
    size_t nt = json_array_size(tl), nn = json_array_size(nl), nc = json_array_size(cl);
    a->timeline = calloc(nt + 1, sizeof(*a->timeline));
    v->timeline = calloc(nt + 1, sizeof(*v->timeline));
    a->notifs = calloc(nn + 1, sizeof(*a->notifs));
    v->notifications = calloc(nn + 1, sizeof(*v->notifications));
    a->complaints = calloc(nc + 1, sizeof(*a->complaints));
    v->complaints = calloc(nc + 1, sizeof(*v->complaints));
    if (!v->ticket || !a->timeline || !v->timeline || !a->notifs || !v->notifications || !a->complaints ||
        !v->complaints)
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach(tl, i, e) {
        Sav__TimelineEntry *t = &a->timeline[v->n_timeline];
        sav__timeline_entry__init(t);
        t->at_ms = (int64_t)json_number_value(json_object_get(e, "at"));
        t->event = (char *)archive_str(e, "event"), t->state = (char *)archive_str(e, "state");
        t->actor = (char *)archive_str(e, "actor"), t->detail = (char *)archive_str(e, "detail");
        v->timeline[v->n_timeline++] = t;
    }
    json_array_foreach(nl, i, e) {
        Sav__NotificationView *n = &a->notifs[v->n_notifications];
        sav__notification_view__init(n);
        n->id = (char *)archive_str(e, "id"), n->channel = (char *)archive_str(e, "channel");
        n->status = (char *)archive_str(e, "status"), n->recipient = (char *)archive_str(e, "recipient");
        n->subject = (char *)archive_str(e, "subject"), n->body = (char *)archive_str(e, "body");
        n->at_ms = atoll(archive_str(e, "at")), n->event = (char *)archive_str(e, "event");
        n->lang = (char *)archive_str(e, "lang");
        if (archive_str(e, "sms_coding")[0]) {
            n->sms_coding = (char *)archive_str(e, "sms_coding");
            n->has_sms_parts = 1, n->sms_parts = (uint32_t)atoi(archive_str(e, "sms_parts"));
        }
        v->notifications[v->n_notifications++] = n;
    }
    json_array_foreach(cl, i, e) {
        Sav__Section *s = &a->complaints[v->n_complaints];
        sav__section__init(s);
        s->name = "complaint";
        s->fields = archive_fields(e, &s->n_fields);
        v->complaints[v->n_complaints++] = s;
    }
    return 0;
}

static void archive_print_record(const json_t *rec) {
    archive_view a;
    if (archive_view_build(rec, &a) == 0) {
        savctl_ticket_print(&a.v);
        printf("\nArchived   %s (closed %s)%s\n", archive_str(rec, "file"), archive_str(rec, "month"),
               json_is_false(json_object_get(rec, "confirmed"))
                   ? "  NOT CONFIRMED: Redis has no record of archiving it (savctl check)" : "");
    } else {
        fprintf(stderr, "savctl: out of memory\n");
    }
    archive_view_free(&a);
}

static void archive_print_table(const json_t *tickets) {
    printf("%-14s %-7s %-9s %-10s %-22s %-9s %-20s %s\n", "id", "month", "state", "outcome", "kind", "customer_id",
           "serial", "closed");
    size_t i;
    json_t *r;
    json_array_foreach(tickets, i, r) {
        char closed[CLOCK_DATE_LEN];
        const json_t *t = json_object_get(r, "ticket");
        clock_date_paris((int64_t)json_integer_value(json_object_get(r, "closed_at")), closed);
        printf("%-14s %-7s %-9s %-10s %-22s %-9s %-20s %s%s\n", archive_str(r, "id"), archive_str(r, "month"),
               archive_str(r, "state"), archive_str(t, "outcome")[0] ? archive_str(t, "outcome") : "-",
               archive_str(t, "kind"), archive_str(r, "customer_id"), archive_str(r, "serial"), closed,
               json_is_false(json_object_get(r, "confirmed")) ? "  (not confirmed)" : "");
    }
    printf("(%zu)\n", json_array_size(tickets));
}

int savctl_cmd_archive_search(savctl *ctl, int argc, char **argv) {
    static const struct option opts[] = {{"ticket", required_argument, 0, 0},   {"customer", required_argument, 0, 0},
                                         {"serial", required_argument, 0, 0},   {"from", required_argument, 0, 0},
                                         {"to", required_argument, 0, 0},       {"limit", required_argument, 0, 0},
                                         {"timeout", required_argument, 0, 't'}, {0, 0, 0, 0}};
    const char *args[2 * ARCHIVE_MAX_ARGS], *ticket = NULL;
    size_t n = 0;
    long timeout_s = ARCHIVE_TIMEOUT_S;
    int c, index;
    while ((c = getopt_long(argc, argv, "", opts, &index)) != -1) {
        if (c == 't') {
            char *end;
            timeout_s = strtol(optarg, &end, 10);
            if (*end || timeout_s < 1 || timeout_s > 86400)
                return savctl_usage_error("archive search", "--timeout takes seconds, 1 to 86400");
            continue;
        }
        if (c != 0) return savctl_usage_error("archive search", "unknown option");
        for (size_t i = 0; i < n; i++)
            if (strcmp(args[2 * i], opts[index].name) == 0)
                return savctl_usage_error("archive search", "--%s given twice", opts[index].name);
        args[2 * n] = opts[index].name, args[2 * n + 1] = optarg;
        n++;
        if (strcmp(opts[index].name, "ticket") == 0) ticket = optarg;
    }
    if (optind < argc) return savctl_usage_error("archive search", "unexpected argument \"%s\"", argv[optind]);
    json_t *doc;
    int rc = archive_command(ctl, "archive.search", args, n, timeout_s, &doc);
    if (rc != SAVCTL_OK) return rc;
    const json_t *tickets = json_object_get(doc, "tickets");
    if (ticket && json_array_size(tickets) == 0) {
        fprintf(stderr, "savctl: intake: no archived ticket %s matches\n", ticket);
        json_decref(doc);
        return SAVCTL_NOT_FOUND;
    }
    if (ctl->json) {
        savctl_print_json(doc);
        return SAVCTL_OK;
    }
    if (ticket) {
        size_t i;
        json_t *r;
        json_array_foreach(tickets, i, r) archive_print_record(r);
    } else {
        archive_print_table(tickets);
        if (json_is_true(json_object_get(doc, "more"))) printf("(more match: narrow the search or raise --limit)\n");
    }
    json_decref(doc);
    return SAVCTL_OK;
}
