/* Catalog loading (catalog_parse, what savctl catalog load and every service's refresh run) on any bytes. A
 * catalog that loads has at least one centre; its ids and references are tokens, its names and texts valid
 * one-line UTF-8 within their fields, its numbers within the bounds of docs/CATALOG.md; ids are unique, every
 * stock entry names a centre and every fault part a part of the catalog; each entry is found again by its id. */
#include "fuzz.h"

#include "catalog.h"
#include "validate.h"

static void check_token(const char *s, size_t size) {
    FUZZ_CHECK(memchr(s, 0, size) && validate_token("id", s) == 0);
}

static void check_text(const char *s, size_t size) {
    FUZZ_CHECK(memchr(s, 0, size) && validate_text("text", s, size - 1, 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    catalog *c = catalog_parse((const char *)data, size);
    if (!c) return 0;
    FUZZ_CHECK(catalog_centre_at(c, 0) != NULL);
    const catalog_centre *ce;
    for (size_t i = 0; (ce = catalog_centre_at(c, i)); i++) {
        check_token(ce->id, sizeof(ce->id));
        check_text(ce->name, sizeof(ce->name)), check_text(ce->address, sizeof(ce->address));
        check_text(ce->opening_hours, sizeof(ce->opening_hours));
        FUZZ_CHECK(ce->labour_rate_cents >= 0 && ce->labour_rate_cents <= 10000000);
        FUZZ_CHECK(ce->travel_fee_cents >= 0 && ce->travel_fee_cents <= 10000000);
        FUZZ_CHECK(ce->diagnostic_fee_cents >= 0 && ce->diagnostic_fee_cents <= 10000000);
        FUZZ_CHECK(catalog_centre_find(c, ce->id) == ce);
    }
    const catalog_model *m;
    size_t nmodels = 0;
    for (size_t i = 0; (m = catalog_model_at(c, i)); i++, nmodels++) {
        check_token(m->id, sizeof(m->id)), check_token(m->family, sizeof(m->family));
        check_text(m->name, sizeof(m->name));
        FUZZ_CHECK(m->commercial_warranty_months >= 0 && m->commercial_warranty_months <= 240);
        FUZZ_CHECK(m->parts_availability_years >= 0 && m->parts_availability_years <= 50);
        FUZZ_CHECK(catalog_model_find(c, m->id) == m);
    }
    FUZZ_CHECK(catalog_model_count(c) == nmodels);
    const catalog_part *p;
    for (size_t i = 0; (p = catalog_part_at(c, i)); i++) {
        check_token(p->ref, sizeof(p->ref)), check_text(p->name, sizeof(p->name));
        FUZZ_CHECK(p->price_cents >= 0 && p->price_cents <= 100000000);
        FUZZ_CHECK(p->nstock >= 0 && p->nstock <= CATALOG_MAX_STOCK);
        for (int s = 0; s < p->nstock; s++) {
            FUZZ_CHECK(catalog_centre_find(c, p->stock[s].centre) != NULL);
            FUZZ_CHECK(p->stock[s].quantity >= 0 && p->stock[s].quantity <= 1000000);
            for (int t = 0; t < s; t++) FUZZ_CHECK(strcmp(p->stock[s].centre, p->stock[t].centre) != 0);
        }
        FUZZ_CHECK(catalog_part_find(c, p->ref) == p);
    }
    const catalog_fault *f;
    for (size_t i = 0; (f = catalog_fault_at(c, i)); i++) {
        check_token(f->family, sizeof(f->family)), check_token(f->code, sizeof(f->code));
        check_text(f->symptom, sizeof(f->symptom)), check_text(f->cause, sizeof(f->cause));
        FUZZ_CHECK(f->labour_minutes >= 0 && f->labour_minutes <= 10000);
        FUZZ_CHECK(f->nparts >= 0 && f->nparts <= CATALOG_MAX_FAULT_PARTS);
        for (int k = 0; k < f->nparts; k++) {
            FUZZ_CHECK(catalog_part_find(c, f->parts[k].ref) != NULL);
            FUZZ_CHECK(f->parts[k].quantity >= 1 && f->parts[k].quantity <= 100);
        }
        FUZZ_CHECK(catalog_fault_find(c, f->family, f->code) == f);
    }
    catalog_free(c);
    return 0;
}
