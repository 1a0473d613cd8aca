/* ringbuf: a fixed-capacity FIFO queue of ints over caller-owned storage.
 * The items are data[head], data[head + 1], ... (indices modulo capacity). */
#include "ringbuf.h"

void rb_init(ringbuf *r, int *storage, size_t capacity)
{
    r->data = storage;
    r->capacity = capacity;
    r->head = 0;
    r->len = 0;
}

int rb_push(ringbuf *r, int value)
{
    if (r->len == r->capacity)
        return -1;
    r->data[(r->head + r->len) % r->capacity] = value;
    r->len++;
    return 0;
}

int rb_pop(ringbuf *r, int *out)
{
    if (r->len == 0)
        return -1;
    *out = r->data[r->head];
    r->head = (r->head + 1) % r->capacity;
    r->len--;
    return 0;
}

size_t rb_len(const ringbuf *r)
{
    return r->len;
}

int rb_peek(const ringbuf *r, size_t i, int *out)
{
    if (i >= r->len)
        return -1;
    *out = r->data[(r->head + i) % r->capacity];
    return 0;
}

void rb_push_overwrite(ringbuf *r, int value)
{
    if (r->capacity == 0)
        return;
    if (r->len < r->capacity) {
        rb_push(r, value);
        return;
    }
    /* Full: the oldest item's slot becomes the newest item's. */
    r->data[r->head] = value;
    r->head = (r->head + 1) % r->capacity;
}
