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

#endif
