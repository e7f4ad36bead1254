#include "generic.h"
#include "err.h"
#include "textfile.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GENERIC_MAX_ARGS 64
#define GENERIC_MAX_OPTIONS 24

#define POS(n, req, mv, h) {n, n, OPT_POSITIONAL, req, mv, h}
#define VAL(n, a, req, mv, h) {n, a, OPT_VALUE, req, mv, h}
#define FLAG(n, a, h) {n, a, OPT_FLAG, 0, NULL, h}
#define END {0}

static const generic_option customer_fields[] = {
    VAL("name", "name", 1, "NAME", "customer's full name"),
    VAL("phone", "phone", 0, "PHONE", "mobile number: 06 12 34 56 78, +33 6 12 34 56 78, 0033 6..., or international"),
    VAL("email", "email", 0, "ADDR", "e-mail address"),
    VAL("lang", "lang", 0, "fr|en", "language of the customer's messages (default fr)"),
    VAL("business", "business", 0, "COMPANY_ID", "a business customer, with its SIREN (9 digits) or SIRET (14 digits)"),
    VAL("consent", "consent", 0, "LIST", "channels the customer agrees to: sms,email for service messages, marketing "
                                        "for offers; or none (default sms,email)"),
    END};

static const generic_option customer_update[] = {
    POS("id", 1, "C-NNNNNN", "the customer"),
    VAL("name", "name", 0, "NAME", "new name"),
    VAL("phone", "phone", 0, "PHONE", "new mobile number (\"\" removes it)"),
    VAL("email", "email", 0, "ADDR", "new e-mail address (\"\" removes it)"),
    VAL("lang", "lang", 0, "fr|en", "new language"),
    VAL("business", "business", 0, "COMPANY_ID", "becomes a business customer (\"\" makes it a consumer)"),
    VAL("consent", "consent", 0, "LIST", "replaces the consents: sms,email,marketing or none"),
    END};

static const generic_option customer_show[] = {POS("id", 1, "C-NNNNNN", "the customer"), END};
static const generic_option customer_erase[] = {POS("id", 1, "C-NNNNNN", "the customer"), END};
static const generic_option customer_list[] = {
    VAL("search", "search", 0, "TEXT", "only customers whose name contains TEXT (any case)"),
    VAL("limit", "limit", 0, "N", "at most N customers, newest first (default 50)"), END};

static const generic_option product_add[] = {
    VAL("serial", "serial", 1, "SN", "serial number (unique)"),
    VAL("model", "model", 1, "MODEL", "model id, as in the catalog"),
    VAL("customer", "customer", 1, "C-NNNNNN", "owner"),
    VAL("delivered", "delivered", 1, "YYYY-MM-DD", "delivery date (starts the guarantees)"),
    FLAG("second-hand", "second_hand", "bought second-hand (12-month presumption instead of 24)"),
    VAL("bought-at", "bought_at", 0, "TEXT", "where it was bought"),
    END};

static const generic_option product_show[] = {POS("serial", 1, "SN", "the product's serial number"), END};
static const generic_option product_transfer[] = {
    POS("serial", 1, "SN", "the product's serial number"),
    VAL("to", "to", 1, "C-NNNNNN", "the new owner"),
    VAL("date", "date", 0, "YYYY-MM-DD", "date of the transfer (default today)"),
    VAL("note", "note", 0, "TEXT", "why (resale, gift, ...)"),
    END};

static const generic_option contract_add[] = {
    POS("serial", 1, "SN", "the product"),
    VAL("type", "type", 1, "TYPE", "extended_warranty or maintenance"),
    VAL("start", "start", 1, "YYYY-MM-DD", "first day covered"),
    VAL("end", "end", 1, "YYYY-MM-DD", "last day covered"),
    VAL("every", "every", 0, "MONTHS", "maintenance: months between preventive visits (required for maintenance)"),
    VAL("visits", "visits", 0, "N", "maintenance: number of visits (default: as many as fit)"),
    VAL("covers", "covers", 0, "LIST", "parts,labour,travel,wear,accident (default parts,labour,travel for an extended "
                                      "warranty, labour,travel,wear for maintenance)"),
    VAL("price", "price", 0, "CENTS", "price paid separately, in cents"),
    FLAG("included", "included", "the price was included in the sale"),
    END};

static const generic_option catalog_load[] = {
    {"file", "document", OPT_FILE, 1, "FILE", "the catalog, JSON (format in docs/CATALOG.md); at most bus.max_frame_bytes"},
    END};
static const generic_option no_options[] = {END};

static const generic_option ticket_list[] = {
    VAL("state", "state", 0, "STATE", "received, in_diagnosis, awaiting_approval, waiting_parts, in_repair, ready, "
                                     "closed or cancelled"),
    VAL("centre", "centre", 0, "CENTRE", "service centre id"),
    VAL("customer", "customer", 0, "C-NNNNNN", "one customer's tickets"),
    VAL("kind", "kind", 0, "KIND", "repair, installation, commissioning, preventive_maintenance, assistance"),
    FLAG("overdue", "overdue", "only open tickets past their SLA due date"),
    FLAG("unclaimed", "unclaimed", "only products flagged as unclaimed after a year (judicial procedure)"),
    VAL("limit", "limit", 0, "N", "at most N tickets, newest first (default 50)"),
    END};

static const generic_option ticket_cancel[] = {
    POS("id", 1, "T-YYYY-NNNNNN", "the ticket"),
    VAL("reason", "reason", 1, "TEXT", "why (told to the customer)"),
    END};
static const generic_option ticket_pickup[] = {POS("id", 1, "T-YYYY-NNNNNN", "the ticket"), END};

static const generic_option complaint_open[] = {
    POS("ticket", 1, "T-YYYY-NNNNNN", "the ticket complained about"),
    VAL("reason", "reason", 1, "REASON", "not_repaired, extra_costs, not_returned or damaged"),
    VAL("text", "text", 1, "TEXT", "the customer's written complaint"),
    VAL("notice-deadline", "notice_deadline", 0, "YYYY-MM-DD",
        "deadline given in the customer's formal notice (default: today + intake.complaint_deadline_days)"),
    END};
static const generic_option complaint_show[] = {POS("id", 1, "CMP-NNNNNN", "the complaint"), END};
static const generic_option complaint_resolve[] = {
    POS("id", 1, "CMP-NNNNNN", "the complaint"),
    VAL("resolution", "resolution", 1, "HOW", "repair, goodwill_credit, refund or rejected"),
    VAL("note", "note", 0, "TEXT", "explanation for the customer (required when rejected)"),
    VAL("amount", "amount", 0, "CENTS", "amount of a goodwill credit or refund, in cents"),
    END};
static const generic_option maintenance_due[] = {
    VAL("days", "days", 0, "N", "horizon in days (default intake.maintenance_lead_days)"), END};

static const generic_option repair_start[] = {POS("id", 1, "T-YYYY-NNNNNN", "the ticket"), END};
static const generic_option repair_done[] = {
    POS("id", 1, "T-YYYY-NNNNNN", "the ticket"),
    VAL("note", "note", 0, "TEXT", "what was done (told to the customer)"),
    END};

static const generic_option diagnose[] = {
    POS("id", 1, "T-YYYY-NNNNNN", "the ticket"),
    VAL("cause", "cause", 1, "CAUSE", "manufacturing, wear, misuse, accident, external or no_fault"),
    VAL("action", "action", 1, "ACTION", "repair, replace_parts, exchange or none (none only with no_fault)"),
    {"part", "part", OPT_REPEATED, 0, "REF[:QTY]", "a spare part needed (repeat for several; QTY defaults to 1)"},
    VAL("labour", "labour", 0, "MINUTES", "labour the repair takes"),
    VAL("note", "note", 0, "TEXT", "the technician's findings"),
    END};
static const generic_option repair_exchange[] = {
    POS("id", 1, "T-YYYY-NNNNNN", "the ticket"),
    VAL("new-serial", "new_serial", 1, "SN", "serial number of the replacement unit"),
    VAL("model", "model", 0, "MODEL", "the replacement's model, if not the same"),
    END};
static const generic_option repair_impossible[] = {
    POS("id", 1, "T-YYYY-NNNNNN", "the ticket"),
    VAL("reason", "reason", 1, "TEXT", "why it cannot be repaired (told to the customer)"),
    END};
static const generic_option parts_stock[] = {POS("centre", 1, "CENTRE", "the service centre"), END};
static const generic_option parts_receive[] = {
    POS("centre", 1, "CENTRE", "the service centre"),
    POS("part", 1, "REF", "the part's reference"),
    POS("quantity", 1, "QTY", "how many were received"),
    VAL("reason", "reason", 0, "TEXT", "delivery note or origin"),
    END};
static const generic_option parts_adjust[] = {
    POS("centre", 1, "CENTRE", "the service centre"),
    POS("part", 1, "REF", "the part's reference"),
    VAL("by", "delta", 1, "+N|-N", "change of the free stock, e.g. --by -2"),
    VAL("reason", "reason", 1, "TEXT", "why (inventory count, damaged part, ...)"),
    END};

static const generic_option quote_id[] = {POS("id", 1, "T-YYYY-NNNNNN", "the ticket"), END};
static const generic_option quote_refuse[] = {
    POS("id", 1, "T-YYYY-NNNNNN", "the ticket"),
    VAL("reason", "reason", 0, "TEXT", "why the customer refuses"),
    END};
static const generic_option invoice_id[] = {POS("id", 1, "FAC-YYYY-NNNNNN", "the invoice"), END};
static const generic_option invoice_list[] = {
    VAL("status", "status", 0, "STATUS", "unpaid, partially_paid, paid or credited"),
    VAL("customer", "customer", 0, "C-NNNNNN", "one customer's invoices"),
    FLAG("overdue", "overdue", "only unpaid invoices past their due date"),
    VAL("limit", "limit", 0, "N", "at most N invoices, newest first (default 50)"),
    END};
static const generic_option invoice_credit[] = {
    POS("id", 1, "FAC-YYYY-NNNNNN", "the invoice"),
    VAL("amount", "amount", 0, "CENTS", "amount of the credit note, in cents"),
    FLAG("full", "full", "credit everything not yet credited"),
    VAL("reason", "reason", 1, "TEXT", "correction, goodwill gesture (geste commercial), ..."),
    END};
static const generic_option payment_record[] = {
    POS("invoice", 1, "FAC-YYYY-NNNNNN", "the invoice"),
    VAL("amount", "amount", 1, "CENTS", "amount paid, in cents (at most the balance)"),
    VAL("method", "method", 1, "METHOD", "card, transfer, cash or cheque"),
    VAL("ref", "ref", 0, "TEXT", "transaction or cheque reference"),
    END};
static const generic_option claim_list[] = {
    VAL("status", "status", 0, "STATUS", "submitted, approved, rejected or paid"), END};
static const generic_option claim_id[] = {POS("id", 1, "WC-NNNNNN", "the warranty claim"), END};
static const generic_option claim_reject[] = {
    POS("id", 1, "WC-NNNNNN", "the warranty claim"),
    VAL("reason", "reason", 1, "TEXT", "why the manufacturer rejects it"),
    END};

static const generic_option notification_list[] = {
    VAL("status", "status", 0, "STATUS", "recorded, queued, deferred, sending, sent, delivered, failed, call_customer or erased"),
    VAL("limit", "limit", 0, "N", "at most N, newest first (default 50)"), END};
static const generic_option notification_retry[] = {POS("id", 1, "ID", "the notification (T-...:event:channel:version)"), END};

static const char created_output[] = "The new record's id. --json: {\"id\": ..., \"replayed\": false}";
static const char step_output[] = "The ticket's new state. --json: {\"id\", \"state\", \"previous_state\", \"replayed\"}";

static const generic_command generic_table[] = {
    {"customer add", "customer.add", SVC_INTAKE, 1, "register a customer",
     "Registers a customer: consumer, or business with its company id. Phone numbers are stored in E.164 form; what\n"
     "cannot be normalised is refused with the reason. Consents to service messages (sms, email) and to marketing are\n"
     "kept separately.", created_output, customer_fields, NULL, NULL, NULL, NULL, NULL},
    {"customer update", "customer.update", SVC_INTAKE, 0, "change a customer's details or consents",
     "Changes only the fields given.", "--json: {\"id\", \"updated\": true}", customer_update, NULL, NULL, NULL, NULL, NULL},
    {"customer erase", "customer.erase", SVC_INTAKE, 1, "pseudonymise a customer (right to erasure)",
     "Removes the customer's name, phone and e-mail from their record and from every message sent or due to them\n"
     "(recipient, subject and text), withdraws their consents, and cancels their messages not sent yet (status\n"
     "erased). Invoices keep the name they were issued to and every legally required mention (kept ten years);\n"
     "tickets, products and complaints keep the customer id, so the history stays whole. Refused while one of\n"
     "the customer's tickets is open or one of their invoices unpaid. Each of their tickets' timelines records\n"
     "the erasure and the identity that made it (a manager or an admin). Cannot be undone; erasing an erased customer changes nothing (already_erased: true).",
     "--json: {\"id\", \"replayed\", \"notifications_erased\", \"tickets\", \"already_erased\"}", customer_erase, NULL, NULL, NULL, NULL,
     NULL},
    {"customer show", "customer.show", SVC_INTAKE, 0, "show a customer with their products and tickets",
     "Shows the customer record, the products they own and their tickets.", "The customer as JSON-like text.",
     customer_show, NULL, NULL, NULL, NULL, NULL},
    {"customer list", "customer.list", SVC_INTAKE, 0, "list customers", "Lists customers, newest first.",
     "--json: {\"customers\": [...], \"count\"}", customer_list, NULL, NULL, NULL, "customers", "id,name,phone,email,lang,type"},
    {"product add", "product.add", SVC_INTAKE, 1, "register a product (asset) to its owner",
     "Registers a unit by its serial number (unique) for an existing customer. The model must be in the catalog;\n"
     "its commercial warranty follows from the catalog.", "The serial. --json: {\"id\": SN, \"replayed\"}", product_add, NULL, NULL, NULL, NULL, NULL},
    {"product show", "product.show", SVC_INTAKE, 0, "show a product's full service history",
     "Shows the unit, its warranty, its ownership history, its contracts and every ticket about it, including\n"
     "exchanges (replaced_by / replaces).", "The product as JSON-like text.", product_show, NULL, NULL, NULL, NULL, NULL},
    {"product transfer", "product.transfer", SVC_INTAKE, 1, "give a product to another customer",
     "Changes the owner and keeps the ownership history.", "--json: {\"id\": SN, \"replayed\"}", product_transfer, NULL, NULL, NULL, NULL, NULL},
    {"contract add", "contract.add", SVC_INTAKE, 1, "attach an extended warranty or a maintenance contract",
     "Attaches a contract to a product. A maintenance contract plans its preventive visits every MONTHS from its\n"
     "start; intake opens each visit's ticket intake.maintenance_lead_days ahead and tells the customer.",
     created_output, contract_add, NULL, NULL, NULL, NULL, NULL},
    {"catalog load", "catalog.load", SVC_INTAKE, 0, "publish a new catalog",
     "Validates the catalog file and publishes it; every service uses it within catalog.check_ms. Stock given in\n"
     "the catalog is created only for parts and centres that have none: live stock is never overwritten.",
     "--json: {\"version\", \"models\"}", catalog_load, NULL, NULL, NULL, NULL, NULL},
    {"catalog show", "catalog.show", SVC_INTAKE, 0, "show the catalog in force",
     "Shows models, service centres, parts and fault codes of the catalog in force.", "The catalog.", no_options, NULL, NULL, NULL, NULL, NULL},
    {"ticket list", "ticket.list", SVC_INTAKE, 0, "list tickets with filters",
     "Lists tickets, newest first, filtered by state, centre, customer, kind, overdue SLA or unclaimed products.",
     "--json: {\"tickets\": [{id, state, outcome, kind, channel, customer_id, serial, model, centre, created_at,\n"
     "sla_due_on, requested_on, unclaimed}], \"count\", \"today\"}", ticket_list, NULL, NULL, NULL, "tickets", "id,state,outcome,kind,channel,customer_id,serial,centre,sla_due_on"},
    {"ticket cancel", "ticket.cancel", SVC_INTAKE, 1, "cancel a ticket (until repair starts)",
     "Cancels a ticket in received, in_diagnosis, awaiting_approval or waiting_parts; the customer is told why.",
     step_output, ticket_cancel, NULL, NULL, NULL, NULL, NULL},
    {"ticket pickup", "ticket.pickup", SVC_INTAKE, 1, "record that the customer collected the product",
     "Closes a ticket in ready: the product was collected (or the on-site intervention handed over).", step_output,
     ticket_pickup, NULL, NULL, NULL, NULL, NULL},
    {"complaint open", "complaint.open", SVC_INTAKE, 1, "record a customer's written complaint",
     "Records a complaint (dispute) about a ticket with its deadline; the customer gets an acknowledgement. Intake\n"
     "escalates it intake.complaint_escalate_days before the deadline and, for consumers, offers the consumer\n"
     "mediator's contact when it stays unresolved intake.mediator_after_days.", created_output, complaint_open, NULL, NULL, NULL, NULL, NULL},
    {"complaint show", "complaint.show", SVC_INTAKE, 0, "show a complaint", "Shows a complaint and its status.",
     "The complaint.", complaint_show, NULL, NULL, NULL, NULL, NULL},
    {"complaint resolve", "complaint.resolve", SVC_INTAKE, 1, "resolve a complaint",
     "Closes a complaint with its resolution; the customer is told.", "--json: {\"id\": CMP-NNNNNN, \"replayed\"}",
     complaint_resolve, NULL, NULL, NULL, NULL, NULL},
    {"maintenance due", "maintenance.due", SVC_INTAKE, 0, "list due and overdue preventive maintenance visits",
     "Lists open maintenance visit tickets (overdue when their date is past) and visits planned within the horizon.",
     "--json: {\"today\", \"until\", \"visits\": [...], \"planned\": [...]}", maintenance_due, NULL, NULL, NULL, NULL, NULL},
    {"diagnose", "diagnose", SVC_DIAGNOSTICS, 1, "record the technician's verdict and decide who pays",
     "Records the verdict (cause, action, parts, labour) and decides the coverage under French law: exclusions,\n"
     "legal guarantee of conformity, commercial warranty, extended warranty, maintenance contract, or billable.\n"
     "The parts are reserved at the ticket's centre; a missing part is backordered and the ticket waits in\n"
     "waiting_parts (when the repair is free) until stock arrives, first come first served. A chargeable repair\n"
     "waits in awaiting_approval for its quote. A verdict can be corrected until repair starts: each version\n"
     "stays in the timeline and the reservations follow the new verdict. The verdict is recorded as the\n"
     "identity's (--identity or client.identity), which the timeline shows as actor.",
     "The new state and the coverage decision. --json: {\"id\", \"state\", \"version\", \"replayed\",\n"
     "\"coverage\": {basis, customer_pays, burden_of_proof, legal_until, commercial_until, extended_until, rule,\n"
     "estimate_cents, reason}, \"missing_parts\": [{part, short}]}", diagnose, NULL, NULL, NULL, NULL, NULL},
    {"repair exchange", "repair.exchange", SVC_DIAGNOSTICS, 1, "replace the product by a new unit",
     "Registers the replacement unit to the customer (delivered today, linked to the unit it replaces, with its own\n"
     "guarantees: a new two-year legal guarantee when the customer had asked for a repair, C4) and makes the ticket\n"
     "ready with the outcome exchanged. Parts reserved for the repair are given back.", step_output, repair_exchange, NULL, NULL, NULL, NULL, NULL},
    {"repair impossible", "repair.impossible", SVC_DIAGNOSTICS, 1, "the product cannot be repaired",
     "Makes the ticket ready with the outcome unrepaired; reserved parts are given back; the customer is told why.",
     step_output, repair_impossible, NULL, NULL, NULL, NULL, NULL},
    {"parts stock", "parts.stock", SVC_DIAGNOSTICS, 0, "show a centre's spare-parts stock",
     "Per part of the catalog: free stock on hand, reserved for tickets, received, consumed, adjusted, and tickets\n"
     "waiting for it. received + adjusted - consumed - reserved = on hand.",
     "--json: {\"centre\", \"parts\": [{part, name, on_hand, reserved, received, consumed, adjusted, tickets_waiting}]}",
     parts_stock, NULL, NULL, NULL, "parts", "part,on_hand,reserved,received,consumed,adjusted,tickets_waiting"},
    {"parts receive", "parts.receive", SVC_DIAGNOSTICS, 1, "record parts received at a centre",
     "Adds stock; waiting tickets get it first come, first served, and move on when they hold every part.",
     "--json: {\"centre\", \"part\", \"on_hand\", \"replayed\", \"tickets_completed\"}", parts_receive, NULL, NULL, NULL, NULL, NULL},
    {"parts adjust", "parts.adjust", SVC_DIAGNOSTICS, 1, "correct a centre's free stock",
     "Inventory correction of the free stock; it never goes below zero and reserved parts cannot be adjusted away.",
     "--json: as parts receive", parts_adjust, NULL, NULL, NULL, NULL, NULL},
    {"quote show", "quote.show", SVC_BILLING, 0, "show a ticket's quote (devis)",
     "Shows the current quote of a ticket: lines (parts, labour at the centre's hourly rate, travel), totals\n"
     "excluding VAT, VAT per rate, total including VAT, validity, the seller and the diagnostic fee.",
     "--json: {\"ticket\", \"version\", \"status\", \"valid_until\", \"document\"}", quote_id, NULL, NULL, NULL, NULL, NULL},
    {"quote accept", "quote.accept", SVC_BILLING, 1, "the customer accepts the quote",
     "Freezes the quote and lets the repair start (or wait for parts still on order).", step_output, quote_id, NULL, NULL, NULL, NULL, NULL},
    {"quote refuse", "quote.refuse", SVC_BILLING, 1, "the customer refuses the quote",
     "The ticket becomes ready with the outcome unrepaired; reserved parts are given back; the centre's diagnostic\n"
     "fee, if it charges one, is invoiced.", step_output, quote_refuse, NULL, NULL, NULL, NULL, NULL},
    {"invoice show", "invoice.show", SVC_BILLING, 0, "show an invoice",
     "Shows an invoice with its lines, payments, balance, and its late-payment figures: for businesses the\n"
     "penalties (ECB rate + 10 points) and the EUR 40 recovery indemnity; for consumers the legal interest from\n"
     "the formal notice.", "The invoice.", invoice_id, NULL, NULL, NULL, NULL, NULL},
    {"invoice list", "invoice.list", SVC_BILLING, 0, "list invoices",
     "Lists invoices, newest first (with --overdue, or an unpaid status: latest due date first). With --customer,\n"
     "from that customer's own index. Only the newest 10,000 invoices of an index are looked at: \"truncated\" says\n"
     "when older ones might also have matched.",
     "--json: {\"invoices\": [...], \"count\", \"today\", \"truncated\"}", invoice_list, NULL, NULL, NULL, "invoices", "id,status,ticket,customer_id,total_cents,balance_cents,due_on"},
    {"invoice credit", "invoice.credit", SVC_BILLING, 1, "issue a credit note (avoir)",
     "Issues a credit note AV-YYYY-NNNNNN (its own continuous series) against an invoice, which is never edited.",
     "--json: {\"id\", \"invoice\", \"amount_cents\", \"replayed\"}", invoice_credit, NULL, NULL, NULL, NULL, NULL},
    {"invoice export", "invoice.export", SVC_BILLING, 0, "print an invoice as a document with its legal mentions",
     "Prints the invoice as plain text: seller, buyer, dates, lines, VAT per rate, totals, payment terms and,\n"
     "for businesses, the late-payment terms.", "The document. --json: {\"id\", \"text\"}", invoice_id, NULL, NULL,
     "text", NULL, NULL},
    {"payment record", "payment.record", SVC_BILLING, 1, "record a payment",
     "Records a payment; partial payments add up, an overpayment is refused, the invoice is paid at zero balance.",
     "--json: {\"invoice\", \"balance_cents\", \"status\", \"replayed\"}", payment_record, NULL, NULL, NULL, NULL, NULL},
    {"claim list", "claim.list", SVC_BILLING, 0, "list warranty claims to the manufacturer",
     "Lists the claims free repairs produced: parts at cost, labour at the warranty rate, coverage basis.",
     "--json: {\"claims\": [...], \"count\", \"total_cents\"}", claim_list, NULL, NULL, NULL, "claims", "id,status,ticket,centre,basis,total_cents"},
    {"claim approve", "claim.decide", SVC_BILLING, 0, "the manufacturer approves a claim", "submitted -> approved.",
     "--json: {\"id\", \"status\"}", claim_id, "status", "approved", NULL, NULL, NULL},
    {"claim reject", "claim.decide", SVC_BILLING, 0, "the manufacturer rejects a claim", "submitted -> rejected.",
     "--json: {\"id\", \"status\"}", claim_reject, "status", "rejected", NULL, NULL, NULL},
    {"claim pay", "claim.decide", SVC_BILLING, 0, "the manufacturer paid a claim", "approved -> paid.",
     "--json: {\"id\", \"status\"}", claim_id, "status", "paid", NULL, NULL, NULL},
    {"notification list", "notification.list", SVC_NOTIFICATION, 0, "list customer notifications",
     "Lists notifications, newest first, with their delivery status: recorded (written, not sent), queued,\n"
     "deferred (an SMS waiting for the end of the quiet hours), sending, sent (accepted by the SMTP server or the SMSC), delivered (an SMS whose every part the\n"
     "operator's receipt confirms), failed (with the server's, the SMSC's or the receipt's answer), or\n"
     "call_customer (no channel the customer consented to: the centre must call).",
     "--json: {\"notifications\": [{id, ticket, event, channel, status, recipient, attempts, last_answer, at,\n"
     "sent_at}], \"count\"}", notification_list, NULL, NULL, NULL, "notifications", "id,status,recipient,attempts,last_answer"},
    {"notification retry", "notification.retry", SVC_NOTIFICATION, 0, "send a failed e-mail or SMS again",
     "Puts a failed e-mail or SMS back in the queue, its attempts counted from zero.", "--json: {\"id\", \"status\": \"queued\"}", notification_retry,
     NULL, NULL, NULL, NULL, NULL},
    {"repair start", "repair.start", SVC_DIAGNOSTICS, 1, "start the repair or intervention",
     "Moves the ticket to in_repair (from in_diagnosis, or from received for installation, commissioning and\n"
     "maintenance visits, which skip diagnosis).", step_output, repair_start, NULL, NULL, NULL, NULL, NULL},
    {"repair done", "repair.done", SVC_DIAGNOSTICS, 1, "finish the repair: ready for pickup",
     "Moves the ticket to ready with the outcome repaired; the customer is told where and when to collect it.",
     step_output, repair_done, NULL, NULL, NULL, NULL, NULL},
};

const generic_command *generic_commands(size_t *n) {
    *n = sizeof(generic_table) / sizeof(generic_table[0]);
    return generic_table;
}

void generic_help(const generic_command *gc, FILE *out) {
    fprintf(out, "NAME\n    savctl %s - %s\n\nSYNOPSIS\n    savctl [--config FILE] [--identity NAME] [--json] %s", gc->words,
            gc->summary, gc->words);
    for (const generic_option *o = gc->options; o->name; o++) {
        const char *open = o->required ? "" : "[", *close = o->required ? "" : "]";
        if (o->kind == OPT_POSITIONAL)
            fprintf(out, " %s%s%s", open, o->metavar, close);
        else if (o->kind == OPT_FLAG)
            fprintf(out, " [--%s]", o->name);
        else
            fprintf(out, " %s--%s %s%s%s", open, o->name, o->metavar, close, o->kind == OPT_REPEATED ? "..." : "");
    }
    if (gc->changes) fprintf(out, " [--request-id ID]");
    fprintf(out, "\n\nDESCRIPTION\n    ");
    for (const char *p = gc->description; *p; p++) fputs(*p == '\n' ? "\n    " : (char[]){*p, 0}, out);
    fprintf(out, "\n\nOPTIONS\n");
    for (const generic_option *o = gc->options; o->name; o++) {
        char left[64];
        if (o->kind == OPT_POSITIONAL)
            snprintf(left, sizeof(left), "%s", o->metavar);
        else if (o->kind == OPT_FLAG)
            snprintf(left, sizeof(left), "--%s", o->name);
        else
            snprintf(left, sizeof(left), "--%s %s", o->name, o->metavar);
        fprintf(out, "    %-28s %s%s\n", left, o->help, o->required ? " (required)" : "");
    }
    if (gc->changes)
        fprintf(out, "    %-28s %s\n", "--request-id ID",
                "idempotency key: the same id again returns the first answer and changes nothing");
    fprintf(out, "\nOUTPUT\n    ");
    for (const char *p = gc->output; *p; p++) fputs(*p == '\n' ? "\n    " : (char[]){*p, 0}, out);
    fprintf(out, "\n\nEXIT STATUS\n    0 done, 1 usage error, 2 rejected (reason on stderr), 3 not found, 4 %s unavailable,\n"
                 "    6 forbidden (%s does not admit the identity, or its role may not run %s).\n",
            settings_service_name(gc->service), settings_service_name(gc->service), gc->command);
}

/* The arguments collected from the command line; file contents are owned here. */
typedef struct generic_args {
    Sav__Field cells[GENERIC_MAX_ARGS];
    Sav__Field *ptrs[GENERIC_MAX_ARGS];
    size_t n;
    char *files[4];
    size_t nfiles;
} generic_args;

static int generic_add(generic_args *a, const char *name, const char *value) {
    if (a->n == GENERIC_MAX_ARGS) return -1;
    sav__field__init(&a->cells[a->n]);
    a->cells[a->n].name = (char *)name;
    a->cells[a->n].value = (char *)value;
    a->ptrs[a->n] = &a->cells[a->n];
    a->n++;
    return 0;
}

/* Parses argv into args; returns 0, or the exit code after printing the usage error. */
static int generic_parse(savctl *ctl, const generic_command *gc, int argc, char **argv, generic_args *a,
                         const char **request_id) {
    struct option opts[GENERIC_MAX_OPTIONS + 2];
    const generic_option *by_index[GENERIC_MAX_OPTIONS + 1], *positionals[4];
    int n = 0, npositional = 0;
    for (const generic_option *o = gc->options; o->name; o++) {
        if (o->kind == OPT_POSITIONAL) {
            if (npositional < 4) positionals[npositional++] = o;
            continue;
        }
        opts[n] = (struct option){o->name, o->kind == OPT_FLAG ? no_argument : required_argument, 0, n};
        by_index[n++] = o;
    }
    opts[n] = (struct option){"request-id", required_argument, 0, n};
    opts[n + 1] = (struct option){0, 0, 0, 0};
    int c, seen[GENERIC_MAX_OPTIONS + 1] = {0};
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == '?' || c == ':') return savctl_usage_error(gc->words, "bad option");
        if (c == n) {
            if (!gc->changes) return savctl_usage_error(gc->words, "--request-id is for commands that change something");
            *request_id = optarg;
            continue;
        }
        const generic_option *o = by_index[c];
        if (seen[c]++ && o->kind != OPT_REPEATED) return savctl_usage_error(gc->words, "--%s given twice", o->name);
        const char *value = o->kind == OPT_FLAG ? "1" : optarg;
        if (o->kind == OPT_FILE) {
            size_t size;
            char *content = textfile_read(optarg, (size_t)ctl->cfg.max_frame_bytes - 1024, &size);
            if (!content) return savctl_usage_error(gc->words, "%s", err_get());
            a->files[a->nfiles++] = content;
            value = content;
        }
        if (generic_add(a, o->arg, value) != 0) return savctl_usage_error(gc->words, "too many arguments");
    }
    for (int i = 0; i < n; i++)
        if (by_index[i]->required && !seen[i]) return savctl_usage_error(gc->words, "--%s is required", by_index[i]->name);
    for (int i = 0; i < npositional; i++) {
        if (optind < argc)
            generic_add(a, positionals[i]->arg, argv[optind++]);
        else if (positionals[i]->required)
            return savctl_usage_error(gc->words, "%s is required", positionals[i]->metavar);
    }
    if (optind < argc) return savctl_usage_error(gc->words, "unexpected argument \"%s\"", argv[optind]);
    return 0;
}

/* Prints a JSON value as indented text: objects as "key: value" lines, arrays of objects as blocks. */
static void generic_print_text(const json_t *v, int indent, const char *key) {
    const char *k;
    json_t *child;
    size_t i;
    if (json_is_object(v)) {
        if (key) printf("%*s%s:\n", indent, "", key);
        json_object_foreach((json_t *)v, k, child) generic_print_text(child, key ? indent + 2 : indent, k);
    } else if (json_is_array(v)) {
        printf("%*s%s: %s\n", indent, "", key ? key : "items", json_array_size(v) ? "" : "(none)");
        json_array_foreach(v, i, child) {
            if (json_is_object(child)) {
                printf("%*s-\n", indent + 2, "");
                generic_print_text(child, indent + 4, NULL);
            } else {
                char *s = json_dumps(child, JSON_ENCODE_ANY);
                printf("%*s- %s\n", indent + 2, "", json_is_string(child) ? json_string_value(child) : s);
                free(s);
            }
        }
    } else {
        char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);
        printf("%*s%-22s %s\n", indent, "", key ? key : "", json_is_string(v) ? json_string_value(v) : s ? s : "");
        free(s);
    }
}

/* Prints a result array as a table of the given columns, each as wide as its widest cell (at most 40). */
static void generic_print_table(const json_t *rows, const char *columns) {
    char cols[256], *names[16], *save = NULL;
    int n = 0, width[16];
    snprintf(cols, sizeof(cols), "%s", columns);
    for (char *c = strtok_r(cols, ",", &save); c && n < 16; c = strtok_r(NULL, ",", &save)) names[n++] = c;
    size_t i;
    json_t *row;
    for (int c = 0; c < n; c++) width[c] = (int)strlen(names[c]);
    json_array_foreach(rows, i, row) {
        for (int c = 0; c < n; c++) {
            json_t *v = json_object_get(row, names[c]);
            char *text = json_is_string(v) ? strdup(json_string_value(v)) : json_is_null(v) || !v ? strdup("-") : json_dumps(v, JSON_ENCODE_ANY);
            int w = text ? (int)strlen(text) : 0;
            if (w > width[c]) width[c] = w > 40 ? 40 : w;
            free(text);
        }
    }
    for (int c = 0; c < n; c++) printf("%-*s%s", c + 1 < n ? width[c] : 0, names[c], c + 1 < n ? "  " : "\n");
    json_array_foreach(rows, i, row) {
        for (int c = 0; c < n; c++) {
            json_t *v = json_object_get(row, names[c]);
            char *text = json_is_string(v) ? strdup(json_string_value(v)) : json_is_null(v) || !v ? strdup("-") : json_dumps(v, JSON_ENCODE_ANY);
            printf("%-*.*s%s", c + 1 < n ? width[c] : 0, width[c], text ? text : "", c + 1 < n ? "  " : "\n");
            free(text);
        }
    }
    printf("(%zu)\n", json_array_size(rows));
}

int generic_run(savctl *ctl, const generic_command *gc, int argc, char **argv) {
    generic_args a = {0};
    const char *request_id = NULL;
    char fresh_id[ENVELOPE_ID_LEN];
    int rc = generic_parse(ctl, gc, argc, argv, &a, &request_id);
    if (rc == 0) {
        Sav__Command cmd = SAV__COMMAND__INIT;
        cmd.name = (char *)gc->command;
        if (gc->changes && !request_id) envelope_new_id(fresh_id), request_id = fresh_id;
        cmd.request_id = (char *)request_id;
        if (gc->fixed_arg) generic_add(&a, gc->fixed_arg, gc->fixed_value);
        cmd.n_args = a.n;
        cmd.args = a.ptrs;
        Sav__Envelope *reply;
        rc = savctl_request(ctl, gc->service, SAV__MESSAGE_TYPE__COMMAND, &cmd.base, NULL, &reply);
        if (rc == SAVCTL_OK) {
            Sav__CommandResult *res = reply->type == SAV__MESSAGE_TYPE__COMMAND_RESULT
                                          ? (Sav__CommandResult *)envelope_body(reply, &sav__command_result__descriptor)
                                          : NULL;
            json_t *doc = res ? json_loads(res->json, 0, NULL) : NULL;
            if (!doc) {
                fprintf(stderr, "savctl: %s sent an unexpected reply\n", settings_service_name(gc->service));
                rc = SAVCTL_INTERNAL;
            } else if (ctl->json) {
                savctl_print_json(doc);
            } else if (gc->text_field && json_is_string(json_object_get(doc, gc->text_field))) {
                fputs(json_string_value(json_object_get(doc, gc->text_field)), stdout);
                json_decref(doc);
            } else if (gc->table && json_is_array(json_object_get(doc, gc->table))) {
                generic_print_table(json_object_get(doc, gc->table), gc->columns);
                if (json_is_true(json_object_get(doc, "truncated")))
                    fprintf(stderr, "savctl: only the newest entries of the index were looked at: older ones may also match\n");
                json_decref(doc);
            } else {
                generic_print_text(doc, 0, NULL);
                json_decref(doc);
            }
            if (res) sav__command_result__free_unpacked(res, NULL);
            envelope_free(reply);
        }
    }
    for (size_t i = 0; i < a.nfiles; i++) free(a.files[i]);
    return rc;
}
