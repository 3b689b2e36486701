// Package ids makes the shop's identifiers: a prefix naming the kind of thing,
// then 48 bits of Unix milliseconds and 64 random bits in hex, so that ids of
// one kind sort by creation time (the order lists are paged in) and never
// collide in practice.
package ids
