/* Unit tests of common/catalog: the shipped sample loads, and bad catalogs are refused with the entry at fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "err.h"

static void sample_catalog_loads(void **state) {
    (void)state;
    catalog *c = catalog_load("deploy/local/catalog.json");
    assert_non_null(c);
    const catalog_model *m = catalog_model_find(c, "WM-7000");
    assert_non_null(m);
    assert_string_equal(m->family, "washing_machine");
    const catalog_fault *f = catalog_fault_find(c, "washing_machine", "E21");
    assert_non_null(f);
    assert_int_equal(f->nparts, 1);
    assert_string_equal(f->parts[0].ref, "RES-2000W");
    assert_int_equal(catalog_part_find(c, "RES-2000W")->price_cents, 4590);
    assert_null(catalog_fault_find(c, "dishwasher", "E21"));
    assert_null(catalog_model_find(c, "NOPE"));
    const catalog_centre *centre = catalog_centre_find(c, "PAR-01");
    assert_non_null(centre);
    assert_int_equal(centre->labour_rate_cents, 6500);
    const catalog_part *p = catalog_part_find(c, "RES-2000W");
    assert_int_equal(p->nstock, 3);
    assert_string_equal(p->stock[0].centre, "PAR-01");
    assert_int_equal(p->stock[0].quantity, 4);
    catalog_free(c);
}

static catalog *load_text(const char *text) {
    char path[] = "/tmp/sav-catalog-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    catalog *c = catalog_load(path);
    unlink(path);
    return c;
}

#define CENTRES "\"centres\": [{\"id\": \"C1\", \"name\": \"n\", \"address\": \"a\", \"opening_hours\": \"h\", " \
                "\"labour_rate_cents\": 6000, \"travel_fee_cents\": 0, \"diagnostic_fee_cents\": 0}], "

static void bad_catalogs_are_refused(void **state) {
    (void)state;
    assert_null(load_text("{\"models\": ["));
    assert_non_null(strstr(err_get(), "catalog"));
    assert_null(load_text("{\"models\": [{\"id\": \"A\", \"name\": \"a\", \"family\": \"f\", "
                          "\"commercial_warranty_months\": -1, \"parts_availability_years\": 1}], " CENTRES
                          "\"parts\": [], \"fault_codes\": []}"));
    assert_non_null(strstr(err_get(), "models[0]"));
    assert_non_null(strstr(err_get(), "commercial_warranty_months"));
    assert_null(load_text("{\"models\": [], " CENTRES "\"parts\": [], \"fault_codes\": [{\"family\": \"f\", \"code\": \"E1\", "
                          "\"symptom\": \"s\", \"cause\": \"c\", \"labour_minutes\": 5, "
                          "\"parts\": [{\"ref\": \"MISSING\", \"qty\": 1}]}]}"));
    assert_non_null(strstr(err_get(), "MISSING"));
    assert_null(load_text("{\"models\": [{\"id\": \"A\", \"name\": \"a\", \"family\": \"f\", "
                          "\"commercial_warranty_months\": 1, \"parts_availability_years\": 1}, "
                          "{\"id\": \"A\", \"name\": \"b\", \"family\": \"f\", "
                          "\"commercial_warranty_months\": 1, \"parts_availability_years\": 1}], " CENTRES
                          "\"parts\": [], \"fault_codes\": []}"));
    assert_non_null(strstr(err_get(), "twice"));
    assert_null(load_text("{\"models\": [], \"centres\": [], \"parts\": [], \"fault_codes\": []}"));
    assert_non_null(strstr(err_get(), "at least one service centre"));
    assert_null(load_text("{\"models\": [], " CENTRES "\"parts\": [{\"ref\": \"P\", \"name\": \"p\", "
                          "\"price_cents\": 1, \"stock\": {\"NOWHERE\": 2}}], \"fault_codes\": []}"));
    assert_non_null(strstr(err_get(), "unknown centre \"NOWHERE\""));
    assert_null(load_text("{\"models\": [], " CENTRES "\"parts\": [{\"ref\": \"P\", \"name\": \"p\", "
                          "\"price_cents\": 1, \"stock\": {\"C1\": -2}}], \"fault_codes\": []}"));
    assert_non_null(strstr(err_get(), "stock of C1"));
    assert_null(load_text("[]"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sample_catalog_loads),
        cmocka_unit_test(bad_catalogs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
