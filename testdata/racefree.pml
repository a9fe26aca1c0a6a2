/*
 * racefree.pml: the race-free bus protocol as first designed (bus(5)
 * describes the protocol as implemented: the gate closed at publish, see
 * GATE_AT_PUBLISH), with timeouts, deaths and undo, checked with spin.
 *
 * Modelled
 *   - The five semaphores S W X Q N. Every semop group of the protocol is one
 *     d_step whose first statement is the group's blocking guard, so the
 *     whole group happens at once or not at all, as semop does.
 *   - SEM_UNDO: every process keeps its own adjustments (adj* arrays, "what
 *     the kernel adds back at exit"); a killed or exiting process has them
 *     applied in one atomic step, clamped at 0 as Linux does. Q := 0
 *     (SETVAL) clears every process's adjustment for Q, as the kernel does.
 *   - NW = 2 writers: writer 0 sends M0 = 2 messages, writer 1 sends M1 = 1
 *     (each round from "take" to "finish" or giving up; a writer that gave
 *     up goes on with its next message). Each writer chooses at start
 *     to be patient (never gives up, never dies: it must finish every round,
 *     so a deadlock shows as an invalid end state) or impatient: then it
 *     may give up waiting for X, waiting for W (gives X back, gate left
 *     closed) or in the finish loop ({Q +1} then {N -1, X +1}), and may be
 *     killed between any two of its steps (undo applied). In the finish loop
 *     any writer may also time out its short wait and do the re-release
 *     (Q := 0 again), any number of times.
 *   - NL = 3 listeners. Listener 0 is steady: joined before anything else,
 *     never leaves or dies. Listeners 1 and 2 join once, when X is free and
 *     W = 0, receive any number of messages and may leave after copying
 *     ({S -1, W -1}). Each chooses at start to be frail or not; a frail one
 *     may also give up joining, leave while armed ({S -1}, then exit with
 *     its Q arm undone by the kernel) or be killed between any two steps.
 *     As for writers, a listener that is not frail must never be stuck,
 *     since timeouts that are always enabled would hide every deadlock.
 *   - The segment is written in two halves (seg0 then seg1, two
 *     statements) and copied in two halves, each half holding the message
 *     id (writer * 4 + sequence number), so a torn copy shows.
 *   - A release is a separate step of the listener, taken whenever Q = 0
 *     holds: this includes the kernel waking a blocked waiter within the
 *     SETVAL call and also a listener that entered (or re-entered, after a
 *     stop) its wait late.
 *
 * Assertions
 *   - no torn copy (both halves of a copy carry the same id), no release
 *     with nothing ever written (id 0);
 *   - per listener and writer, the sequence numbers received strictly
 *     increase: no message is taken twice, each writer's order is kept;
 *   - when a writer finishes a round normally (it saw S = 0), every
 *     listener registered at its publish and still registered has taken
 *     that very message;
 *   - deadlock freedom: no invalid end state. Valid end states: a finished
 *     writer, a listener that left or died, and any listener blocked in its
 *     release wait { Q 0, W +1 } (end_ label).
 *
 * Abstracted
 *   - Message text and length: a message is its id. Reading "at most 2048
 *     bytes up to the first NUL" is not modelled.
 *   - Timeouts are nondeterministic choices, not clocks. EINTR retries and
 *     stopped processes add no behaviour beyond a late or repeated entry
 *     into a wait, which the interleavings already contain.
 *   - A listener that leaves does not join again; a listener's reporting
 *     and the writer's "how many had not taken it" count are not modelled.
 *
 * Check (exhaustive, no compression; the whole state space; this is what
 * TestSpinModels runs):
 *   spin -a racefree.pml
 *   gcc -O2 -DSAFETY -DNOFAIR -DMEMLIM=8192 -o pan pan.c
 *   ./pan -m100000
 *   expect "errors: 0", no "invalid end state", no "assertion violated",
 *   no "max search depth too small".
 *
 * Figures (spin 6.5.2, gcc -O2, 2-core build machine, 24 GiB):
 *   M0=2 M1=1 (default): 13,401,846 states stored, 19,456,188 matched,
 *     depth 95, errors 0, 15.7 s on an idle machine (47-52 s while the
 *     machine was loaded), 1.3 GB.
 *   spin -DM0=1 -a (one message each): 2,352,537 states, depth 77, 340 MB,
 *     under 5 s.
 *   spin -DM0=2 -DM1=2 -a, gcc ... -DCOLLAPSE -DMEMLIM=16000, ./pan -m100000
 *     -w28 (lossless compression, still exhaustive; too big for CI):
 *     83,117,097 states, depth 114, errors 0, 455 s (machine loaded),
 *     5.3 GB.
 *
 * Variants (spin -D... -a racefree.pml, same gcc and pan flags; run by
 * TestSpinModels unless marked by hand):
 *   -DGATE_AT_PUBLISH  the take is { X -1 UNDO } and the gate closes in the
 *             publish call { W 0, Q +1, N +1 UNDO }. Passes: 12,356,540
 *             states, depth 95, 16.5 s, 1.25 GB. Its behaviours include
 *             TAKE_W0's, so writers of both kinds may share a bus.
 *   -DGATE_AT_PUBLISH -DTAKE_W0  what proto.go does with -DWAITN_REARM=7
 *             (below): the take waits for W = 0 too { X -1 UNDO, W 0 }
 *             (fair joins: a join and a take then wait for the same moment,
 *             and Linux serves them in arrival order). With -DLEAKCHECK
 *             and the listeners' two calls (no WAITN_REARM; by hand since
 *             the one call) it passes: 11,376,560 states, depth 95, 15.4 s
 *             on an idle machine (48 s loaded), 1.1 GB. Adding -DOLDTAKE=1 (or 0) makes that writer take with
 *             { X -1 } alone, as a bus from before fair joins on the same
 *             bus: passes too, 11,691,032 states (12,042,068), depth 95
 *             (by hand, not in TestSpinModels).
 *   -DWAITN_REARM=MASK  the listeners in MASK (bit l: listener l) wait for
 *             N and re-arm in one call { N 0, S +1 UNDO, Q +1 UNDO, W -1 UNDO },
 *             the others in two, { N 0 } then the re-arm. With
 *             -DGATE_AT_PUBLISH -DTAKE_W0 -DLEAKCHECK: =7 is what proto.go
 *             does, and passes: 10,586,958 states, depth 89, 9.2 s idle,
 *             1.07 GB; =6 (the steady listener in two calls, as a listener
 *             of an older bus beside the others) passes: 11,014,020 states,
 *             depth 91, 11.2 s. (=0 is the two calls everywhere, as above.)
 *   -DLEAKCHECK  adds: a writer that gives up waiting for W leaves the
 *             writers' gates on Q (Q less the listeners' pending arms) as it
 *             found them. With -DGATE_AT_PUBLISH it passes (12,356,540
 *             states, depth 95, 20 s while loaded, 1.2 GB). With the gate at the take it
 *             FAILS at depth 35 (222,609 states): the take's gate stays on Q,
 *             and while a listener holds W no release clears it, so every
 *             writer that times out there adds one, up to SEMVMX (what
 *             TestGateDoesNotLeak shows on the real objects).
 *
 * Mutants (the same file, preprocessor switches; each must FAIL):
 *   -DGATE_AT_PUBLISH -DTAKE_W0 -DSPLIT_REARM  the listener (of the two
 *             calls: no WAITN_REARM) gives W back
 *             before re-arming ({ W -1 }, then { S +1, Q +1 }): what the
 *             fair take relies on, W = 0 only once every listener is armed,
 *             is gone, and a writer finishes a round that a registered
 *             listener missed: assertion violated at depth 38.
 *   -DGATE_AT_PUBLISH -DTAKE_W0 -DWAITN_REARM=7 -DNO_WAITN  the one call
 *             without its N 0, re-arming as soon as counted out: the
 *             writer's re-release hands a listener the same message again,
 *             assertion violated (taken twice) at depth 57.
 *   -DGATE_AT_PUBLISH -DTAKE_W0 -DNOPUBW0  publish without { W 0 }, the
 *             take's being thought enough: a listener released by a dead
 *             writer's open gate takes W after the take, and the copy tears
 *             (depth 40, 427,723 states).
 *   -DNOGATE  the writer's take is { X -1 } without the gate { Q +1 }
 *             (racefree_nogate.pml, also run by the Go test): torn copy at
 *             depth 40, 452,752 states.
 *   -DDRAFT1  the first draft, without the gate: no gate anywhere, the listener
 *             released by { Q 0 } alone and taking W after the copy
 *             ({ S -1, W +1 }): torn copy at depth 52. With every writer
 *             patient it passes (212,842 states): the gate is for writers
 *             that die or give up (bus(5), "Why: the gate").
 *   Other mutants tried by hand (sed on a copy), and what spin reported:
 *   publish without { W 0 }, SETVAL not clearing the Q undo, leaving while
 *   armed with a hand-made { Q -1 }, the listener's re-arm split in two
 *   calls, no N -1 at finish: all fail (lost message, a message taken
 *   twice, deadlock). Joining at any time fails (deadlock, R3) only when
 *   the writer has no re-release.
 *
 * Notes from the check
 *   - In this model (race-free peers only) the re-release never fires:
 *     with an assert(0) in its place the check still passes. Q stays 0
 *     through the finish loop: joins need X, re-arms need N = 0.
 *   - The gate a giving-up writer closes is not needed for safety here
 *     (removing it passes); the protocol keeps it for a C writer coming next.
 *   - Arming without SEM_UNDO still passes: that undo is about Q growing
 *     (SEMVMX), which this bounded model does not check.
 */

#ifndef M0
#define M0 2       /* messages writer 0 sends */
#endif
#ifndef M1
#define M1 1       /* messages writer 1 sends */
#endif
#ifndef OLDTAKE
#define OLDTAKE 9  /* with TAKE_W0: the writer, if any, that takes with { X -1 } alone */
#endif
#ifndef WAITN_REARM
#define WAITN_REARM 0  /* bit l: listener l waits for N and re-arms in one call */
#endif
#define MERGED(l) ((WAITN_REARM >> (l)) & 1)
#ifdef NO_WAITN
#define WAITN 1    /* mutant: the one call without its N 0 */
#else
#define WAITN (N == 0)
#endif
#define NW 2       /* writers */
#define NL 3       /* listeners; listener 0 is the steady one */

byte S, W, X = 1, Q, N;          /* the semaphore array */
short adjS[NL], adjW[NL], adjQ[NL];   /* listeners' SEM_UNDO adjustments */
short adjX[NW], adjN[NW];             /* writers' SEM_UNDO adjustments */

byte seg0, seg1;                 /* the segment, written in two halves */

byte regm;                       /* bit l: listener l is registered */
byte snap[NW];                   /* regm at the writer's publish */
byte last[NL * NW];              /* last sequence number listener l took from writer w */

#define ADD0(v, a) if :: (v) + (a) < 0 -> v = 0 :: else -> v = (v) + (a) fi

/* listener l, if registered at the publish and still, took message s of writer me */
#define TOOK(l) assert(!((snap[me] >> l) & 1) || !((regm >> l) & 1) || last[l * NW + me] == s)

/* LEAKCHECK: a writer that gives up before publishing leaves the writers'
 * gates on Q (Q less the listeners' pending arms) as it found them */
#ifdef LEAKCHECK
#define ARM(l) (adjQ[l] < 0 -> 1 : 0)
#define GATES (Q - ARM(0) - ARM(1) - ARM(2))
#define SAVEGATES g0 = GATES
#define CHECKGATES assert(GATES == g0); g0 = 0
#define CLEARGATES g0 = 0
#else
#define SAVEGATES skip
#define CHECKGATES skip
#define CLEARGATES skip
#endif

/* semctl(Q, SETVAL, 0): also clears every process's undo for Q */
#define SETQ0 Q = 0; adjQ[0] = 0; adjQ[1] = 0; adjQ[2] = 0

proctype Writer(byte me)
{
	bit patient;
	byte s = 1;
#ifdef LEAKCHECK
	byte g0;                         /* writers' gates on Q when this round began */
#endif

	if
	:: patient = 1
	:: patient = 0
	fi;
next:
	/* take: { X -1 UNDO, Q +1 } (GATE_AT_PUBLISH: { X -1 UNDO }; with
	 * TAKE_W0 too: { X -1 UNDO, W 0 }) */
	if
#if defined(GATE_AT_PUBLISH) && defined(TAKE_W0)
	:: d_step { X > 0 && (me == OLDTAKE || W == 0) -> SAVEGATES; X--; adjX[me]++ }
#elif defined(NOGATE) || defined(DRAFT1) || defined(GATE_AT_PUBLISH)
	:: d_step { X > 0 -> SAVEGATES; X--; adjX[me]++ }
#else
	:: d_step { X > 0 -> SAVEGATES; X--; adjX[me]++; Q++ }
#endif
	:: !patient -> goto nextmsg      /* gave up waiting for X: holds nothing */
	:: !patient -> goto killed
	fi;
	/* publish: { W 0, N +1 UNDO } (GATE_AT_PUBLISH: { W 0, Q +1, N +1 UNDO }) */
	if
#if defined(GATE_AT_PUBLISH) && defined(NOPUBW0)
	:: d_step { Q++; N++; adjN[me]--; snap[me] = regm; CLEARGATES }
#elif defined(GATE_AT_PUBLISH) && !defined(NOGATE)
	:: d_step { W == 0 -> Q++; N++; adjN[me]--; snap[me] = regm; CLEARGATES }
#else
	:: d_step { W == 0 -> N++; adjN[me]--; snap[me] = regm; CLEARGATES }
#endif
	/* gave up: X back (the gate closed at the take stays closed) */
	:: !patient -> d_step { X++; adjX[me]--; CHECKGATES }; goto nextmsg
	:: !patient -> goto killed
	fi;
	if
	:: seg0 = me * 4 + s
	:: !patient -> goto killed
	fi;
	if
	:: seg1 = me * 4 + s
	:: !patient -> goto killed
	fi;
	if
	:: d_step { SETQ0 }
	:: !patient -> goto killed
	fi;
	do
	:: d_step {
		S == 0 -> N--; adjN[me]++; X++; adjX[me]--;
		/* normal finish: every listener registered through the round took it */
		TOOK(0); TOOK(1); TOOK(2);
		snap[me] = 0
	   };
	   break
	/* the short wait timed out: re-release. Guarded by Q > 0, because Q = 0
	 * means no arm is pending (an arm's undo entry is -1 only while the arm
	 * is in Q) and the SETVAL would change nothing; unguarded, it would let
	 * a stuck writer loop for ever instead of showing as a deadlock. */
	:: d_step { Q > 0 -> SETQ0 }
	:: !patient ->                   /* past the deadline: close the gate, finish */
#ifndef DRAFT1
		Q++;
#endif
		if
		:: d_step { N--; adjN[me]++; X++; adjX[me]--; snap[me] = 0 }
		:: goto killed
		fi;
		break
	:: !patient -> goto killed
	od;
nextmsg:
	if
	:: s < (me == 0 -> M0 : M1) -> s++; goto next
	:: else
	fi;
	goto done;
killed:
	/* the kernel applies the undo, all at once ("if" only to carry the label) */
	if
	:: d_step {
		ADD0(X, adjX[me]); ADD0(N, adjN[me]);
		adjX[me] = 0; adjN[me] = 0; snap[me] = 0; CLEARGATES
	   }
	fi;
done:
	skip
}

proctype Listener(byte me; bit steady)
{
	/* steady: joined by init, stays, never dies. Otherwise it joins later
	 * and may leave after copying a message (bus wait); and it is frail or
	 * not: a frail one may also give up joining, leave while armed
	 * (timeout), or be killed between any two steps; one that is not must
	 * never be stuck, so a deadlock involving it shows. */
	bit frail;
	byte c0;                         /* first half of the copy */

	if
	:: steady
	:: !steady -> frail = 1
	:: !steady
	fi;
	if
	:: steady
	:: !steady ->
		if
		/* join: { X -1, X +1, W 0, S +1 UNDO, Q +1 UNDO } */
		:: d_step { X > 0 && W == 0 -> S++; adjS[me]--; Q++; adjQ[me]--; regm = regm | (1 << me) }
		:: frail -> goto done        /* gave up joining, or killed before */
		fi
	fi;
end_armed:
	/* released: { Q 0, W +1 UNDO } */
	if
#ifdef DRAFT1
	:: Q == 0
#else
	:: d_step { Q == 0 -> W++; adjW[me]-- }
#endif
	:: frail -> d_step { S--; adjS[me]++; regm = regm & ~(1 << me) };  /* leave while armed */
		goto exit                /* then exit: the kernel undoes a pending arm */
	:: frail -> goto exit            /* killed */
	fi;
	/* copy the message, in two steps */
	if
	:: c0 = seg0
	:: frail -> goto exit
	fi;
	if
	:: d_step {
		/* the second half; the copy is checked and recorded at once */
		assert(c0 == seg1);      /* no torn copy */
		assert(c0 != 0);         /* something was written */
		assert(c0 % 4 > last[me * NW + c0 / 4]);  /* not taken twice, in order */
		last[me * NW + c0 / 4] = c0 % 4;
		c0 = 0
	   }
	:: frail -> goto exit
	fi;
	if
#ifdef DRAFT1
	:: d_step { S--; adjS[me]++; W++; adjW[me]-- }
	:: !steady -> d_step { S--; adjS[me]++; regm = regm & ~(1 << me) }; goto exit
#else
	:: d_step { S--; adjS[me]++ }    /* counted out: { S -1 UNDO } */
	/* leave after copying: { S -1 UNDO, W -1 UNDO } */
	:: !steady -> d_step { S--; adjS[me]++; W--; adjW[me]++; regm = regm & ~(1 << me) }; goto exit
#endif
	:: frail -> goto exit
	fi;
	/* Z(N): { N 0 }; with WAITN_REARM, the listeners in its mask wait and
	 * re-arm in one call { N 0, S +1 UNDO, Q +1 UNDO, W -1 UNDO } */
	if
	:: d_step { MERGED(me) && WAITN -> S++; adjS[me]--; Q++; adjQ[me]--; W--; adjW[me]++ };
		goto end_armed
	:: !MERGED(me) && N == 0
	:: frail -> goto exit
	fi;
	/* { S +1 UNDO, Q +1 UNDO, W -1 UNDO }: count in, re-arm, let writers in */
	if
#ifdef SPLIT_REARM
	:: d_step { W--; adjW[me]++ }    /* mutant: W given back first, */
	:: frail -> goto exit
	fi;
	if
	:: d_step { S++; adjS[me]--; Q++; adjQ[me]-- }   /* then the re-arm */
#else
	:: d_step { S++; adjS[me]--; Q++; adjQ[me]--; W--; adjW[me]++ }
#endif
	:: frail -> goto exit
	fi;
	goto end_armed;
exit:
	/* death or exit: the kernel applies the undo, all at once */
	if
	:: d_step {
		ADD0(S, adjS[me]); ADD0(W, adjW[me]); ADD0(Q, adjQ[me]);
		adjS[me] = 0; adjW[me] = 0; adjQ[me] = 0;
		regm = regm & ~(1 << me);
		c0 = 0
	   }
	fi;
done:
	skip
}

init {
	atomic {
		/* listener 0 joins before anything else and stays */
		S = 1; adjS[0] = -1; Q = 1; adjQ[0] = -1; regm = 1;
		run Listener(0, 1);
		run Listener(1, 0);
		run Listener(2, 0);
		run Writer(0);
		run Writer(1)
	}
}
