/* ringbuf: a fixed-capacity FIFO queue of ints over caller-owned storage. */
#ifndef RINGBUF_H
#define RINGBUF_H

#include <stddef.h>

typedef struct {
    int *data;       /* caller-owned storage of `capacity` ints */
    size_t capacity; /* most items the queue can hold */
    size_t head;     /* index in data of the oldest item */
    size_t len;      /* number of items held */
} ringbuf;

/* Start an empty queue over storage[0..capacity). */
void rb_init(ringbuf *r, int *storage, size_t capacity);

/* Append value as the newest item: 0, or -1 when full (nothing changes). */
int rb_push(ringbuf *r, int value);

/* Remove the oldest item into *out: 0, or -1 when empty (*out untouched). */
int rb_pop(ringbuf *r, int *out);

/* The number of items held. */
size_t rb_len(const ringbuf *r);

/* Copy the i-th oldest item (0 = the oldest) into *out without removing it:
 * 0, or -1 when i >= rb_len(r) (*out untouched). */
int rb_peek(const ringbuf *r, size_t i, int *out);

/* Append value as the newest item; when full, drop the oldest item first.
 * Does nothing when the capacity is 0. */
void rb_push_overwrite(ringbuf *r, int value);

#endif
