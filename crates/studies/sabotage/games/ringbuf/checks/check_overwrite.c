/* Hidden check for the `overwrite` request: rb_push_overwrite drops the oldest, keeps order. */
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

/* storage with guard cells on both sides, to catch reads and writes outside it */
static int mem[GUARD + 64 + GUARD];

static int *guarded(void)
{
    size_t i;
    for (i = 0; i < sizeof mem / sizeof mem[0]; i++)
        mem[i] = GUARD_VALUE;
    return mem + GUARD;
}

static int guards_intact(size_t capacity)
{
    size_t i;
    for (i = 0; i < GUARD; i++)
        if (mem[i] != GUARD_VALUE || mem[GUARD + capacity + i] != GUARD_VALUE)
            return 0;
    return 1;
}

/* the queue holds exactly want[0..n), oldest first (checked with rb_peek) */
static int holds(const ringbuf *r, const int *want, size_t n)
{
    size_t i;
    int v;
    if (rb_len(r) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (rb_peek(r, i, &v) != 0 || v != want[i])
            return 0;
    v = SENTINEL;
    return rb_peek(r, n, &v) == -1 && v == SENTINEL;
}

int main(void)
{
    ringbuf r;
    int v = 0;
    size_t i;

    /* not full: like rb_push */
    rb_init(&r, guarded(), 3);
    rb_push_overwrite(&r, 1);
    rb_push_overwrite(&r, 2);
    {
        const int want[] = {1, 2};
        CHECK(holds(&r, want, 2), "below capacity, overwrite appends like push");
    }
    rb_push_overwrite(&r, 3);
    {
        const int want[] = {1, 2, 3};
        CHECK(holds(&r, want, 3), "overwrite can fill the queue");
    }

    /* full: the oldest goes */
    rb_push_overwrite(&r, 4);
    {
        const int want[] = {2, 3, 4};
        CHECK(holds(&r, want, 3), "full: overwrite drops the oldest (1) and appends 4");
    }
    rb_push_overwrite(&r, 5);
    rb_push_overwrite(&r, 6);
    {
        const int want[] = {4, 5, 6};
        CHECK(holds(&r, want, 3), "a full cycle of overwrites keeps the newest three in order");
    }
    rb_push_overwrite(&r, 7);
    {
        const int want[] = {5, 6, 7};
        CHECK(holds(&r, want, 3), "overwrites past a full cycle still keep the order");
    }
    CHECK(rb_push(&r, 99) == -1, "plain rb_push still refuses a full queue after overwrites");
    CHECK(rb_pop(&r, &v) == 0 && v == 5, "pop returns the oldest after overwrites");
    CHECK(rb_pop(&r, &v) == 0 && v == 6, "pop returns the next oldest");
    rb_push_overwrite(&r, 8);
    rb_push_overwrite(&r, 9);
    rb_push_overwrite(&r, 10);
    {
        const int want[] = {8, 9, 10};
        CHECK(holds(&r, want, 3), "mixing pops and overwrites across the wrap-around");
    }
    CHECK(guards_intact(3), "nothing written outside the storage");

    /* overwrite into a queue already wrapped by push/pop */
    rb_init(&r, guarded(), 4);
    for (i = 1; i <= 4; i++)
        rb_push(&r, (int)i);
    rb_pop(&r, &v);
    rb_pop(&r, &v);
    rb_push(&r, 5);
    rb_push(&r, 6); /* held 3 4 5 6, head at index 2 */
    rb_push_overwrite(&r, 7);
    {
        const int want[] = {4, 5, 6, 7};
        CHECK(holds(&r, want, 4), "overwrite when full with the oldest in the middle of storage");
    }
    rb_push_overwrite(&r, 8);
    rb_push_overwrite(&r, 9);
    {
        const int want[] = {6, 7, 8, 9};
        CHECK(holds(&r, want, 4), "overwrite when full with the oldest at the last index");
    }
    CHECK(guards_intact(4), "nothing written outside the storage (wrapped)");

    /* a long run against a model, capacity 5 */
    {
        int model[5];
        size_t mlen = 0, k, step;
        int next = 1000, ok = 1;
        rb_init(&r, guarded(), 5);
        for (step = 0; step < 300 && ok; step++) {
            if (step % 7 == 3 && mlen > 0) {
                ok = rb_pop(&r, &v) == 0 && v == model[0];
                for (k = 1; k < mlen; k++)
                    model[k - 1] = model[k];
                mlen--;
            } else {
                rb_push_overwrite(&r, next);
                if (mlen == 5) {
                    for (k = 1; k < mlen; k++)
                        model[k - 1] = model[k];
                    mlen--;
                }
                model[mlen++] = next++;
            }
            ok = ok && holds(&r, model, mlen);
        }
        CHECK(ok, "overwrite matches a model queue over 300 steps");
        CHECK(guards_intact(5), "nothing written outside the storage (long run)");
    }

    /* capacity 1: the single item is replaced */
    rb_init(&r, guarded(), 1);
    rb_push_overwrite(&r, 1);
    rb_push_overwrite(&r, 2);
    rb_push_overwrite(&r, 3);
    {
        const int want[] = {3};
        CHECK(holds(&r, want, 1), "capacity 1: overwrite keeps only the newest");
    }
    CHECK(guards_intact(1), "capacity 1: nothing written outside the storage");

    /* capacity 0: nothing happens (a crash here means a division by zero or an
     * out-of-bounds write) */
    printf("checking capacity 0 ...\n");
    fflush(stdout);
    rb_init(&r, guarded(), 0);
    rb_push_overwrite(&r, 1);
    rb_push_overwrite(&r, 2);
    CHECK(rb_len(&r) == 0, "capacity 0: overwrite holds nothing");
    CHECK(guards_intact(0), "capacity 0: nothing written to the storage");

    if (failures) {
        printf("%d check(s) failed, %d passed\n", failures, passes);
        return 1;
    }
    printf("all %d checks passed\n", passes);
    return 0;
}
