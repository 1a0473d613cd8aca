/* Tests of the basic ring buffer operations. */
#include <stdio.h>
#include "ringbuf.h"

static int failures = 0;

#define EXPECT(cond)                                                    \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, \
                    #cond);                                             \
            failures++;                                                 \
        }                                                               \
    } while (0)

int main(void)
{
    int storage[3];
    ringbuf r;
    int v = 0;

    rb_init(&r, storage, 3);
    EXPECT(rb_len(&r) == 0);
    EXPECT(rb_pop(&r, &v) == -1);

    EXPECT(rb_push(&r, 1) == 0);
    EXPECT(rb_push(&r, 2) == 0);
    EXPECT(rb_push(&r, 3) == 0);
    EXPECT(rb_len(&r) == 3);
    EXPECT(rb_push(&r, 4) == -1); /* full */
    EXPECT(rb_len(&r) == 3);

    EXPECT(rb_pop(&r, &v) == 0 && v == 1);
    EXPECT(rb_push(&r, 4) == 0); /* wraps around */
    EXPECT(rb_pop(&r, &v) == 0 && v == 2);
    EXPECT(rb_pop(&r, &v) == 0 && v == 3);
    EXPECT(rb_pop(&r, &v) == 0 && v == 4);
    EXPECT(rb_len(&r) == 0);

    v = 99;
    EXPECT(rb_pop(&r, &v) == -1 && v == 99); /* empty: out untouched */

    /* rb_peek: by age, without removing, across the wrap-around */
    {
        int s[4];
        ringbuf q;
        int x = -7;
        rb_init(&q, s, 4);
        EXPECT(rb_peek(&q, 0, &x) == -1 && x == -7);
        rb_push(&q, 1);
        rb_push(&q, 2);
        rb_push(&q, 3);
        rb_pop(&q, &x);
        rb_push(&q, 4);
        rb_push(&q, 5); /* held: 2 3 4 5, 5 stored in s[0] */
        EXPECT(rb_peek(&q, 0, &x) == 0 && x == 2);
        EXPECT(rb_peek(&q, 3, &x) == 0 && x == 5);
        EXPECT(rb_len(&q) == 4);
        rb_pop(&q, &x);
        x = -7;
        EXPECT(rb_peek(&q, 3, &x) == -1 && x == -7); /* i == len */
    }

    /* rb_push_overwrite: drops the oldest when full, keeps the order */
    {
        int s[3];
        ringbuf q;
        int x = 0;
        rb_init(&q, s, 3);
        rb_push_overwrite(&q, 1);
        rb_push_overwrite(&q, 2);
        rb_push_overwrite(&q, 3);
        rb_push_overwrite(&q, 4);
        rb_push_overwrite(&q, 5); /* held: 3 4 5 */
        EXPECT(rb_len(&q) == 3);
        EXPECT(rb_pop(&q, &x) == 0 && x == 3);
        EXPECT(rb_pop(&q, &x) == 0 && x == 4);
        EXPECT(rb_pop(&q, &x) == 0 && x == 5);
        EXPECT(rb_len(&q) == 0);
        rb_init(&q, s, 0);
        rb_push_overwrite(&q, 1); /* capacity 0: nothing happens */
        EXPECT(rb_len(&q) == 0);
    }

    /* rb_minmax: only the held items count, across the wrap-around */
    {
        int s[4];
        ringbuf q;
        int x = 0, lo = 11, hi = 22;
        rb_init(&q, s, 4);
        EXPECT(rb_minmax(&q, &lo, &hi) == -1 && lo == 11 && hi == 22);
        rb_push(&q, -50);
        rb_push(&q, 90);
        rb_push(&q, 7);
        rb_pop(&q, &x);
        rb_pop(&q, &x);
        rb_push(&q, 8);
        rb_push(&q, 9); /* held: 7 8 9, 9 stored in s[0] */
        EXPECT(rb_minmax(&q, &lo, &hi) == 0 && lo == 7 && hi == 9);
        rb_push_overwrite(&q, 3);
        rb_push_overwrite(&q, 4); /* held: 8 9 3 4 */
        EXPECT(rb_minmax(&q, &lo, &hi) == 0 && lo == 3 && hi == 9);
    }

    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all ring buffer tests passed\n");
    return 0;
}
