/*
 * reference.pml: the reference algorithm (the C bus tool's, libbus.c's
 * bus_read and bus_write, each operation its own semop call), checked with
 * spin, which must find that it deadlocks.
 *
 * Modelled
 *   - The semaphores S W X Q N; each semop of the C tool is one statement
 *     (P(a): a > 0 -> a--, in one d_step; Z(a): a == 0; a := 0: Q = 0).
 *   - One writer broadcasting M = 2 messages in a loop, two listeners that
 *     join (V(S)) whenever they are scheduled and then loop for ever.
 *   - Valid end states: the writer done, a listener in Z(Q) (end_ label)
 *     waiting for a release that no writer will send. Anything else that
 *     blocks (the writer in Z(W) or Z(S), a listener in Z(S) or Z(N)) is a
 *     deadlock: an invalid end state.
 *
 * Abstracted
 *   - No timeouts, deaths or SEM_UNDO (no process dies), no message
 *     content: the deadlock needs none of them.
 *
 * Check:
 *   spin -a reference.pml
 *   gcc -O2 -DSAFETY -DNOFAIR -o pan pan.c
 *   ./pan -m10000
 *   expect "invalid end state", "errors: 1". spin -t -p reference.pml
 *   replays the trail.
 *
 * Figures (spin 6.5.2, gcc -O2, 2-core build machine):
 *   160 states stored, depth reached 64, 0.01 s; first error "invalid
 *   end state (at depth 58)": R2, the writer done, one listener in Z(S)
 *   holding W (S = 1, W = 1, X = 1, Q = 1, N = 0), the other one counted
 *   in and armed in Z(Q). ./pan -i (shortest trail): depth 13, R3/R1: both
 *   listeners counted in after the writer's Q := 0, the writer in Z(S)
 *   and both listeners in Z(Q) (S = 2, Q = 1, N = 1, X = 0).
 *   ./pan -c0: 34 invalid end states in 703 states.
 */

#define M 2        /* messages the writer sends */

byte S, W, X = 1, Q, N;

proctype Writer()
{
	byte m = 1;

	do
	:: m <= M ->
		d_step { X > 0 -> X-- }  /* P(X) */
		W == 0;                  /* Z(W) */
		skip;                    /* write the message */
		N++;                     /* V(N) */
		Q = 0;                   /* Q := 0 */
		S == 0;                  /* Z(S) */
		d_step { N > 0 -> N-- }  /* P(N) */
		X++;                     /* V(X) */
		m++
	:: else -> break
	od
}

proctype Listener()
{
	S++;                             /* V(S): join */
	do
	:: Q++;                          /* V(Q): arm */
end_wait:
		Q == 0;                  /* Z(Q): wait for the release */
		skip;                    /* copy the message */
		W++;                     /* V(W) */
		d_step { S > 0 -> S-- }  /* P(S) */
		S == 0;                  /* Z(S) */
		N == 0;                  /* Z(N) */
		S++;                     /* V(S) */
		d_step { W > 0 -> W-- }  /* P(W) */
	od
}

init {
	atomic {
		run Writer();
		run Listener();
		run Listener()
	}
}
