/*
 * racefree_nogate.pml: a mutant of racefree.pml that must FAIL. The
 * writer's take is { X -1 UNDO } without the gate { Q +1 }; everything else
 * is racefree.pml (a writer that gives up still closes the gate).
 *
 * What spin finds (why the gate exists; bus(5), "Why: the gate"):
 * writer 0 publishes, does Q := 0 and is killed before the steady listener
 * passes { Q 0, W +1 }, so Q stays 0 (a killed writer closes no gate);
 * writer 1 takes X (no gate), sees W = 0, publishes and writes the first
 * half of its segment; the listener is let through the open gate and
 * copies half of each message: the torn-copy assertion fails. With the
 * torn-copy check removed, the next failure is a listener registered
 * through a round that completed normally without having its message.
 *
 * Check (same flags as racefree.pml; the file is included):
 *   spin -a racefree_nogate.pml
 *   gcc -O2 -DSAFETY -DNOFAIR -DMEMLIM=8192 -o pan pan.c
 *   ./pan -m100000
 *   expect "assertion violated", "errors: 1".
 *
 * Figures (spin 6.5.2): "assertion violated (c0==seg1) (at depth 40)",
 * 452,752 states stored, under 2 s.
 */
#define NOGATE
#include "racefree.pml"
