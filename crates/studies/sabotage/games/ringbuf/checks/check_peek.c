/* Hidden check for the `peek` request: rb_peek by age, bounds, and wrap-around. */
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

static int peek_is(const ringbuf *r, size_t i, int want)
{
    int v = SENTINEL;
    return rb_peek(r, i, &v) == 0 && v == want;
}

static int peek_fails(const ringbuf *r, size_t i)
{
    int v = SENTINEL;
    return rb_peek(r, i, &v) == -1 && v == SENTINEL;
}

int main(void)
{
    ringbuf r;
    int v = 0;
    size_t i;

    /* empty */
    rb_init(&r, guarded(), 4);
    CHECK(peek_fails(&r, 0), "peek(0) of an empty queue returns -1 and leaves out untouched");
    CHECK(peek_fails(&r, 1), "peek(1) of an empty queue returns -1");
    CHECK(peek_fails(&r, (size_t)-1), "peek(SIZE_MAX) returns -1");

    /* in order, no wrap */
    rb_push(&r, 10);
    rb_push(&r, 20);
    rb_push(&r, 30);
    CHECK(peek_is(&r, 0, 10), "peek(0) is the oldest");
    CHECK(peek_is(&r, 1, 20), "peek(1) is the second oldest");
    CHECK(peek_is(&r, 2, 30), "peek(2) is the newest");
    CHECK(peek_fails(&r, 3), "peek(len) returns -1 even when capacity is larger");
    CHECK(peek_fails(&r, 4), "peek(capacity) returns -1");
    CHECK(rb_len(&r) == 3, "peek does not remove items");
    CHECK(rb_pop(&r, &v) == 0 && v == 10, "pop after peek still returns the oldest");
    CHECK(peek_is(&r, 0, 20), "after a pop, peek(0) is the new oldest");
    CHECK(peek_fails(&r, 2), "after a pop, the popped slot is not visible (peek(len) == -1)");

    /* wrap-around: held 3 4 5 6 stored at indices 2 3 0 1 */
    rb_init(&r, guarded(), 4);
    for (i = 1; i <= 4; i++)
        rb_push(&r, (int)i);
    rb_pop(&r, &v);
    rb_pop(&r, &v);
    rb_push(&r, 5);
    rb_push(&r, 6);
    CHECK(peek_is(&r, 0, 3), "wrapped: peek(0) == 3");
    CHECK(peek_is(&r, 1, 4), "wrapped: peek(1) == 4");
    CHECK(peek_is(&r, 2, 5), "wrapped: peek(2) == 5 (stored at index 0)");
    CHECK(peek_is(&r, 3, 6), "wrapped: peek(3) == 6 (stored at index 1)");
    CHECK(peek_fails(&r, 4), "wrapped and full: peek(4) returns -1");
    rb_pop(&r, &v);
    rb_pop(&r, &v);
    rb_pop(&r, &v); /* held: 6; stale 3 4 5 still in storage */
    CHECK(peek_is(&r, 0, 6), "after pops: peek(0) == 6");
    CHECK(peek_fails(&r, 1), "stale slots are not visible: peek(1) == -1");
    CHECK(peek_fails(&r, 3), "stale slots are not visible: peek(3) == -1");
    CHECK(guards_intact(4), "nothing written outside the storage");

    /* a long run against a simple model, capacity 5 */
    {
        int model[5];
        size_t mlen = 0, k, step;
        int next = 100, ok = 1;
        rb_init(&r, guarded(), 5);
        for (step = 0; step < 200 && ok; step++) {
            if (step % 3 == 2 && mlen > 0) {
                rb_pop(&r, &v);
                for (k = 1; k < mlen; k++)
                    model[k - 1] = model[k];
                mlen--;
            } else if (mlen < 5) {
                rb_push(&r, next);
                model[mlen++] = next++;
            }
            for (k = 0; k < mlen && ok; k++)
                ok = peek_is(&r, k, model[k]);
            ok = ok && peek_fails(&r, mlen);
        }
        CHECK(ok, "peek matches a model queue over 200 mixed pushes and pops");
        CHECK(guards_intact(5), "nothing written outside the storage (long run)");
    }

    /* capacity 1 */
    rb_init(&r, guarded(), 1);
    rb_push(&r, 7);
    CHECK(peek_is(&r, 0, 7), "capacity 1: peek(0)");
    CHECK(peek_fails(&r, 1), "capacity 1: peek(1) == -1");
    rb_pop(&r, &v);
    rb_push(&r, 8);
    CHECK(peek_is(&r, 0, 8), "capacity 1: peek(0) after refill");

    /* earlier behaviour */
    rb_init(&r, guarded(), 2);
    CHECK(rb_push(&r, 1) == 0 && rb_push(&r, 2) == 0, "push into free space returns 0");
    CHECK(rb_push(&r, 3) == -1 && rb_len(&r) == 2, "push into a full queue returns -1");
    CHECK(rb_pop(&r, &v) == 0 && v == 1, "pop returns the oldest");
    v = SENTINEL;
    rb_pop(&r, &v);
    CHECK(rb_pop(&r, &v) == -1 && v == 2, "pop of an empty queue returns -1, out untouched");

    if (failures) {
        printf("%d check(s) failed, %d passed\n", failures, passes);
        return 1;
    }
    printf("all %d checks passed\n", passes);
    return 0;
}
