/* Hidden check for the `minmax` request: rb_minmax over the held items only. */
#include <limits.h>
#include <stdio.h>
#include "ringbuf.h"

static int failures = 0, passes = 0;

#define CHECK(cond, what)                                               \
    do {                                                                \
        if (cond) {                                                     \
            passes++;                                                   \
        } else {                                                        \
            printf("FAIL (line %d): %s  [%s]\n", __LINE__, what, #cond); \
            failures++;                                                 \
        }                                                               \
    } while (0)

#define GUARD 8
#define GUARD_VALUE (-424242)
#define SENTINEL 123456

/* storage with guard cells on both sides, to catch reads outside it */
static int mem[GUARD + 64 + GUARD];

static int *guarded(void)
{
    size_t i;
    for (i = 0; i < sizeof mem / sizeof mem[0]; i++)
        mem[i] = GUARD_VALUE;
    return mem + GUARD;
}

static int minmax_is(const ringbuf *r, int want_min, int want_max)
{
    int lo = SENTINEL, hi = SENTINEL;
    return rb_minmax(r, &lo, &hi) == 0 && lo == want_min && hi == want_max;
}

static int minmax_fails(const ringbuf *r)
{
    int lo = SENTINEL, hi = -SENTINEL;
    return rb_minmax(r, &lo, &hi) == -1 && lo == SENTINEL && hi == -SENTINEL;
}

/* a small deterministic pseudo-random sequence */
static unsigned long seed = 12345;
static int next_value(void)
{
    seed = seed * 1103515245UL + 12345UL;
    return (int)((seed >> 8) % 2001) - 1000;
}

int main(void)
{
    ringbuf r;
    int v = 0;
    size_t i;

    /* empty */
    rb_init(&r, guarded(), 4);
    CHECK(minmax_fails(&r), "empty: returns -1, min and max untouched");

    /* one item */
    rb_push(&r, 42);
    CHECK(minmax_is(&r, 42, 42), "one item is both min and max");

    /* all positive / all negative (no 0 assumed) */
    rb_push(&r, 17);
    rb_push(&r, 99);
    CHECK(minmax_is(&r, 17, 99), "all positive: min 17, max 99");
    rb_init(&r, guarded(), 4);
    rb_push(&r, -5);
    rb_push(&r, -80);
    rb_push(&r, -33);
    CHECK(minmax_is(&r, -80, -5), "all negative: min -80, max -5");

    /* extreme values */
    rb_init(&r, guarded(), 3);
    rb_push(&r, INT_MAX);
    rb_push(&r, 0);
    rb_push(&r, INT_MIN);
    CHECK(minmax_is(&r, INT_MIN, INT_MAX), "INT_MIN and INT_MAX");
    rb_init(&r, guarded(), 2);
    rb_push(&r, INT_MIN);
    rb_push(&r, INT_MIN);
    CHECK(minmax_is(&r, INT_MIN, INT_MIN), "all INT_MIN");

    /* popped items do not count */
    rb_init(&r, guarded(), 5);
    rb_push(&r, 1);
    rb_push(&r, 2);
    rb_push(&r, 3);
    rb_push(&r, 4);
    rb_push(&r, 5);
    rb_pop(&r, &v);
    rb_pop(&r, &v);
    rb_pop(&r, &v); /* held: 4 5 at indices 3 4 */
    CHECK(minmax_is(&r, 4, 5), "popped items (1 2 3, still in storage) do not count");
    rb_push(&r, 6); /* held: 4 5 6, 6 at index 0 */
    CHECK(minmax_is(&r, 4, 6), "wrapped: held 4 5 6 with 6 at index 0");
    rb_push(&r, 100);
    rb_push(&r, -100); /* held: 4 5 6 100 -100 */
    CHECK(minmax_is(&r, -100, 100), "wrapped and full");
    rb_pop(&r, &v);
    rb_pop(&r, &v);
    rb_pop(&r, &v); /* held: 100 -100 at indices 1 2 */
    CHECK(minmax_is(&r, -100, 100), "held in the middle of storage");
    rb_pop(&r, &v);
    CHECK(minmax_is(&r, -100, -100), "one item left");
    rb_pop(&r, &v);
    CHECK(minmax_fails(&r), "empty again after pops: -1, outputs untouched");

    /* the extremes leave the queue while new items arrive */
    rb_init(&r, guarded(), 3);
    rb_push(&r, -1000);
    rb_push(&r, 1000);
    rb_push(&r, 10);
    rb_push_overwrite(&r, 20); /* drops -1000 */
    CHECK(minmax_is(&r, 10, 1000), "the dropped minimum no longer counts");
    rb_push_overwrite(&r, 30); /* drops 1000 */
    CHECK(minmax_is(&r, 10, 30), "the dropped maximum no longer counts");

    /* a long run against a model, capacity 6 */
    {
        int model[6];
        size_t mlen = 0, k, step;
        int ok = 1;
        rb_init(&r, guarded(), 6);
        for (step = 0; step < 400 && ok; step++) {
            int x = next_value();
            if (x % 3 == 0 && mlen > 0) {
                rb_pop(&r, &v);
                for (k = 1; k < mlen; k++)
                    model[k - 1] = model[k];
                mlen--;
            } else {
                rb_push_overwrite(&r, x);
                if (mlen == 6) {
                    for (k = 1; k < mlen; k++)
                        model[k - 1] = model[k];
                    mlen--;
                }
                model[mlen++] = x;
            }
            if (mlen == 0) {
                ok = minmax_fails(&r);
            } else {
                int lo = model[0], hi = model[0];
                for (k = 1; k < mlen; k++) {
                    if (model[k] < lo)
                        lo = model[k];
                    if (model[k] > hi)
                        hi = model[k];
                }
                ok = minmax_is(&r, lo, hi);
                if (!ok)
                    printf("  step %lu: expected min %d max %d\n", (unsigned long)step, lo, hi);
            }
        }
        CHECK(ok, "minmax matches a model over 400 pseudo-random steps");
    }

    /* minmax changes nothing */
    rb_init(&r, guarded(), 3);
    rb_push(&r, 9);
    rb_push(&r, 8);
    {
        int lo, hi;
        rb_minmax(&r, &lo, &hi);
    }
    CHECK(rb_len(&r) == 2, "minmax does not remove items");
    CHECK(rb_pop(&r, &v) == 0 && v == 9, "minmax does not reorder items");

    /* earlier behaviour */
    rb_init(&r, guarded(), 2);
    for (i = 0; i < 5; i++)
        rb_push_overwrite(&r, (int)i);
    CHECK(rb_len(&r) == 2, "overwrite keeps the length at capacity");
    CHECK(rb_peek(&r, 0, &v) == 0 && v == 3, "peek(0) after overwrites");
    CHECK(rb_peek(&r, 1, &v) == 0 && v == 4, "peek(1) after overwrites");

    if (failures) {
        printf("%d check(s) failed, %d passed\n", failures, passes);
        return 1;
    }
    printf("all %d checks passed\n", passes);
    return 0;
}
