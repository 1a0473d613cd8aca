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

    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all ring buffer tests passed\n");
    return 0;
}
