/*
 * racefree.pml: the race-free bus protocol of protocol.md section 4, with
 * the timeouts, deaths and undo of section 5, checked with spin.
 *
 * Modelled
 *   - The five semaphores S W X Q N. Every semop group of section 4 is one
 *     d_step whose first statement is the group's blocking guard, so the
 *     whole group happens at once or not at all, as semop does.
 *   - SEM_UNDO: every process keeps its own adjustments (adj* arrays, "what
 *     the kernel adds back at exit"); a killed or exiting process has them
 *     applied in one atomic step, clamped at 0 as Linux does. Q := 0
 *     (SETVAL) clears every process's adjustment for Q, as the kernel does.
 *   - NW = 2 writers, each sending M messages. Each writer chooses at start
 *     to be patient (never gives up, never dies: it must finish every round,
 *     so a deadlock shows as an invalid end state) or impatient: then it
 *     may give up waiting for X, waiting for W (gives X back, gate left
 *     closed) or in the finish loop ({Q +1} then {N -1, X +1}), and may be
 *     killed between any two of its steps (undo applied). In the finish loop
 *     any writer may also time out its short wait and do the re-release
 *     (Q := 0 again), any number of times.
 *   - NL = 3 listeners. Listener 0 is steady: joined before anything else,
 *     never leaves or dies. Listeners 1 and 2 join once (or never), receive
 *     any number of messages, and may leave both ways of section 4 (after
 *     copying: {S -1, W -1}; while armed: {S -1}, then exit with the Q arm
 *     undone by the kernel) or be killed between any two steps.
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
 * Check (exhaustive, no compression; the whole state space):
 *   spin -a racefree.pml
 *   gcc -O2 -DSAFETY -DNOFAIR -DMEMLIM=8192 -o pan pan.c
 *   ./pan -m100000
 *   expect "errors: 0", no "invalid end state", no "assertion violated",
 *   no "max search depth too small".
 *
 * Figures (spin 6.5.2, gcc -O2, 2-core build machine):
 *   FIGURES
 *
 * Mutants (the same file, preprocessor switches; each must FAIL):
 *   -DNOGATE  the writer's take is { X -1 } without the gate { Q +1 }
 *             (racefree_nogate.pml): see its header.
 *   -DDRAFT1  the first draft of section 6: no gate anywhere, the listener
 *             released by { Q 0 } alone and taking W after the copy.
 */

#ifndef M0
#define M0 2       /* messages writer 0 sends */
#endif
#ifndef M1
#define M1 1       /* messages writer 1 sends */
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

/* semctl(Q, SETVAL, 0): also clears every process's undo for Q */
/* listener l, if registered at the publish and still, took message s of writer me */
#define TOOK(l) assert(!((snap[me] >> l) & 1) || !((regm >> l) & 1) || last[l * NW + me] == s)

#define SETQ0 Q = 0; adjQ[0] = 0; adjQ[1] = 0; adjQ[2] = 0

proctype Writer(byte me)
{
	bit patient;
	byte s = 1;

	if
	:: patient = 1
	:: patient = 0
	fi;
next:
	/* take: { X -1 UNDO, Q +1 } */
	if
#if defined(NOGATE) || defined(DRAFT1)
	:: d_step { X > 0 -> X--; adjX[me]++ }
#else
	:: d_step { X > 0 -> X--; adjX[me]++; Q++ }
#endif
	:: !patient -> goto nextmsg      /* gave up waiting for X: holds nothing */
	:: !patient -> goto killed
	fi;
	/* publish: { W 0, N +1 UNDO } */
	if
	:: d_step { W == 0 -> N++; adjN[me]--; snap[me] = regm }
	:: !patient -> d_step { X++; adjX[me]-- }; goto nextmsg  /* gave up: X back, gate stays closed */
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
		adjX[me] = 0; adjN[me] = 0; snap[me] = 0
	   }
	fi;
done:
	skip
}

proctype Listener(byte me; bit steady)
{
	byte c0;                         /* first half of the copy */

	if
	:: steady                        /* joined by init */
	:: !steady ->
		if
		/* join: { X -1, X +1, W 0, S +1 UNDO, Q +1 UNDO } */
		:: d_step { X > 0 && W == 0 -> S++; adjS[me]--; Q++; adjQ[me]--; regm = regm | (1 << me) }
		:: goto done                 /* never joins, or killed before */
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
	:: !steady -> d_step { S--; adjS[me]++; regm = regm & ~(1 << me) };  /* leave while armed */
		goto exit
	:: !steady -> goto exit          /* killed */
	fi;
	/* copy the message, in two steps */
	if
	:: c0 = seg0
	:: !steady -> goto exit
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
	:: !steady -> goto exit
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
	:: !steady -> goto exit
	fi;
	/* Z(N) */
	if
	:: N == 0
	:: !steady -> goto exit
	fi;
	/* { S +1 UNDO, Q +1 UNDO, W -1 UNDO } */
	if
	:: d_step { S++; adjS[me]--; Q++; adjQ[me]--; W--; adjW[me]++ }
	:: !steady -> goto exit
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
