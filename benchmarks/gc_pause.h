/*
 * gc_pause.h - GC pause accounting shared by the benchmarks (gcbench.c,
 * gcold.c): a collection-event callback measuring how long the collector
 * holds the mutator for each step that stops the world.
 *
 * Pause definition: from the first of GC_EVENT_START / PRE_STOP_WORLD /
 * MARK_START / RECLAIM_START to GC_EVENT_END (full collections), to
 * RECLAIM_END (incremental cycle finished) or to POST_START_WORLD when
 * world-stopped marking was abandoned (time limit reached, marking goes
 * on incrementally).  The small incremental mark steps taken inside
 * allocations between these are not pauses; their cost shows in the
 * total time (and in gcold's mutator stalls).
 *
 * Install with GC_set_on_collection_event(on_collection_event) after
 * GC_INIT(); read gc_pause after the run.
 */
#ifndef WBDEV_BENCH_GC_PAUSE_H
#define WBDEV_BENCH_GC_PAUSE_H

#include <gc.h>

#include "bench_util.h"

/* Pause accounting, updated from the collector's event callback (called
 * with the allocation lock held, so no extra locking is needed). */
static struct {
	int open;		/* a pause is in progress */
	int full;		/* opened by GC_EVENT_START: ends at END */
	int marked;		/* MARK_END seen in this pause */
	double start_ms;
	double total_ms;
	double max_ms;
	unsigned long count;
} gc_pause;

static void pause_open(int full)
{
	gc_pause.open = 1;
	gc_pause.full = full;
	gc_pause.marked = 0;
	gc_pause.start_ms = now_ms();
}

static void pause_close(void)
{
	double len = now_ms() - gc_pause.start_ms;

	gc_pause.open = 0;
	gc_pause.total_ms += len;
	if (len > gc_pause.max_ms)
		gc_pause.max_ms = len;
	gc_pause.count++;
}

static void on_collection_event(GC_EventType ev)
{
	switch (ev) {
	case GC_EVENT_START:
		if (!gc_pause.open)
			pause_open(1);
		else
			gc_pause.full = 1;
		break;
	case GC_EVENT_PRE_STOP_WORLD:
	case GC_EVENT_MARK_START:
	case GC_EVENT_RECLAIM_START:
		if (!gc_pause.open)
			pause_open(0);
		break;
	case GC_EVENT_MARK_END:
		gc_pause.marked = 1;
		break;
	case GC_EVENT_POST_START_WORLD:
		/* World restarted without MARK_END: marking was abandoned and
		 * goes on incrementally; the mutator runs again. */
		if (gc_pause.open && !gc_pause.full && !gc_pause.marked)
			pause_close();
		break;
	case GC_EVENT_RECLAIM_END:
		if (gc_pause.open && !gc_pause.full)
			pause_close();
		break;
	case GC_EVENT_END:
		if (gc_pause.open)
			pause_close();
		break;
	default:
		break;
	}
}

#endif /* WBDEV_BENCH_GC_PAUSE_H */
