// SPDX-License-Identifier: GPL-2.0
/*
 * wbdev_log.c - the dirty log of a wbdev area: recording writes, taking
 * entries out (collect) and write-protecting pages again.  Locking: see
 * wbdev_core.c.
 */
#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/rmap.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "wbdev_int.h"

/*
 * Write-protecting a run of pages with one page-table walk
 * (wp_shared_mapping_range: one mmu-notifier call and one TLB flush per
 * VMA) costs about what one folio_mkclean() does (an rmap walk and a
 * single-page flush), so a page on its own is protected with
 * folio_mkclean and longer spans with one walk.  Two dirty pages at most
 * WBDEV_WP_MAX_GAP pages apart share one walk: the clean pages between
 * them are protected already (unless taken without re-protection, see
 * wbdev_area.unlogged), and visiting their page table entries costs far
 * less than a walk of its own.  WBDEV_WP_STEP bounds one walk, between
 * rescheduling points.
 */
#define WBDEV_WP_MAX_GAP	64
#define WBDEV_WP_STEP		(512UL * 64)

/* How wbdev_take() treats the page it takes out of the log. */
enum wbdev_take_mode {
	WBDEV_TAKE_ONLY,	/* read(2): the page stays writable */
	WBDEV_TAKE_MKCLEAN,	/* write-protect it now (folio_mkclean) */
	WBDEV_TAKE_LOCKED,	/* the caller write-protects the span later */
};

/* Empty the window of set bits; area->lock held or area not yet shared. */
void wbdev_window_init(struct wbdev_area *area)
{
	area->dfirst = ULONG_MAX;
	area->dlast = 0;
}

static void wbdev_window_add(struct wbdev_area *area, pgoff_t first,
			     pgoff_t last)
{
	lockdep_assert_held(&area->lock);
	area->dfirst = min(area->dfirst, first);
	area->dlast = max(area->dlast, last);
}

static void wbdev_window_check(struct wbdev_area *area)
{
	lockdep_assert_held(&area->lock);
	if (!area->ndirty)
		wbdev_window_init(area);
}

/**
 * wbdev_note_folio() - remember that area maps a large folio
 * @area: the area
 * @folio: a folio just faulted in for it
 *
 * Only a large folio can be mapped by a writable PMD, which the range
 * walk of wp_shared_mapping_range() does not write-protect (it warns);
 * from the first one on, the area is protected with folio_mkclean().
 * Called from the fault handler, before the PMD can exist.
 */
void wbdev_note_folio(struct wbdev_area *area, struct folio *folio)
{
	if (unlikely(folio_test_large(folio)) && !READ_ONCE(area->large)) {
		WRITE_ONCE(area->large, true);
		smp_wmb();	/* before the PMD: see wbdev_wp_range */
	}
}

/*
 * Record a write to pages [first, first + n) of area (clipped to the
 * area); called with their folio locked (if resident).
 */
void wbdev_mark_range(struct wbdev_area *area, pgoff_t first,
		      pgoff_t n)
{
	struct wbdev_ctx *ctx = area->ctx;
	pgoff_t end = min(first + n, area->npages), bit;
	unsigned long added = 0;

	if (first >= end)
		return;
	spin_lock(&area->lock);
	for (bit = first; bit < end; bit++)
		added += !__test_and_set_bit(bit, area->dirty);
	area->ndirty += added;
	if (added)
		wbdev_window_add(area, first, end - 1);
	spin_unlock(&area->lock);
	if (!added)
		return;
	atomic64_add(added, &ctx->recorded);
	if (atomic_long_add_return(added, &ctx->ndirty) == added)
		wake_up_interruptible_poll(&ctx->wq, EPOLLIN | EPOLLRDNORM);
}

void wbdev_mark(struct wbdev_area *area, pgoff_t pgoff)
{
	wbdev_mark_range(area, pgoff, 1);
}

/*
 * Record a write to every page of a locked folio of area.  A large folio
 * (only shmem_enabled=force or MADV_COLLAPSE can give our files one) may
 * be mapped writable by one PMD after a single page_mkwrite: its other
 * pages would take no fault, so all of them count as written.
 */
void wbdev_mark_folio(struct wbdev_area *area, struct folio *folio)
{
	wbdev_note_folio(area, folio);
	wbdev_mark_range(area, folio->index, folio_nr_pages(folio));
}

/* Drop log entries of [first, first + n) of area. */
void wbdev_unmark_range(struct wbdev_area *area, pgoff_t first,
			pgoff_t n)
{
	pgoff_t end = min(first + n, area->npages);
	unsigned long bit = first, cleared = 0;

	spin_lock(&area->lock);
	for_each_set_bit_from(bit, area->dirty, end) {
		__clear_bit(bit, area->dirty);
		cleared++;
	}
	area->ndirty -= cleared;
	wbdev_window_check(area);
	spin_unlock(&area->lock);
	if (cleared)
		atomic_long_sub(cleared, &area->ctx->ndirty);
}

/*
 * Visit the resident folios of pages [first, last] of area: with mkclean,
 * write-protect each (folio_mkclean); log those the kernel may write
 * without a fault (see wbdev_take()).
 */
static void wbdev_folios_protect(struct wbdev_area *area, pgoff_t first,
				 pgoff_t last, bool mkclean)
{
	struct address_space *mapping = area->shm->f_mapping;
	struct folio_batch fbatch;
	pgoff_t index = first;
	unsigned int i, nr;

	folio_batch_init(&fbatch);
	while (index <= last &&
	       (nr = filemap_get_folios(mapping, &index, last, &fbatch))) {
		for (i = 0; i < nr; i++) {
			struct folio *folio = fbatch.folios[i];

			/* the batch holds one reference */
			if (!mkclean && !wbdev_folio_maybe_gup(folio, 1))
				continue;
			folio_lock(folio);
			if (folio->mapping == mapping) {
				if (mkclean)
					folio_mkclean(folio);
				/* the kernel may write it without a fault */
				if (wbdev_folio_maybe_gup(folio, 1))
					wbdev_mark_folio(area, folio);
			}
			folio_unlock(folio);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
}

static void wbdev_mkclean_pgoffs(struct wbdev_area *area, pgoff_t first,
				 pgoff_t last)
{
	wbdev_folios_protect(area, first, last, true);
}

/*
 * After a page-table walk made pages [first, last] of area read-only: log
 * the resident folios the kernel may write without a fault, as
 * wbdev_take() does (wbdev_folio_maybe_gup()).  The walk took the page
 * table locks get_user_pages() takes its references under, and fast GUP
 * re-checks the PTE after taking one, so a reference taken on a PTE that
 * was writable is visible once the walk is done.  Plain references
 * (FOLL_GET) leave no mark on the mm, so every resident folio is looked
 * at.
 */
static void wbdev_mark_gup(struct wbdev_area *area, pgoff_t first,
			   pgoff_t last)
{
	smp_mb();	/* PTEs written before the reference counts are read */
	wbdev_folios_protect(area, first, last, false);
}

/**
 * wbdev_wp_range() - write-protect pages [first, last] of an area
 * @area: the area
 * @first: first pgoff
 * @last: last pgoff (inclusive, < area->npages)
 *
 * A span of more than one page is write-protected with page-table walks
 * of WBDEV_WP_STEP pages at most (wp_shared_mapping_range(): every VMA of
 * the shmem file, one TLB flush per VMA and walk), its PTEs are cleaned
 * (clean_record_shared_mapping_range(), into a scratch bitmap nobody
 * reads) and the folios the kernel may write without a fault are logged.
 * One page, or an area that may map a large folio by a PMD
 * (wbdev_note_folio()), is protected folio by folio (so is any span if the
 * scratch bitmap cannot be allocated).
 * If a large folio turned up during the walks, the span is done again
 * folio by folio.
 * Called with the mmap lock of the context's mm held.
 */
static void wbdev_wp_range(struct wbdev_area *area, pgoff_t first,
			   pgoff_t last)
{
	struct address_space *mapping = area->shm->f_mapping;
	unsigned long *sink = NULL;
	pgoff_t at = first;

	mmap_assert_locked(area->ctx->mm);
	/* pairs with the smp_wmb() of wbdev_note_folio() */
	if (first != last && !smp_load_acquire(&area->large))
		sink = bitmap_alloc(min_t(pgoff_t, last - first + 1,
					  WBDEV_WP_STEP), GFP_KERNEL);
	if (!sink) {
		wbdev_mkclean_pgoffs(area, first, last);
		return;
	}
	while (at <= last) {
		pgoff_t n = min_t(pgoff_t, last - at + 1, WBDEV_WP_STEP);
		pgoff_t start = 0, end = 0;

		wp_shared_mapping_range(mapping, at, n);
		/*
		 * Then clean the PTEs' dirty bits (the folios are dirty
		 * since page_mkwrite): mprotect() makes a read-only PTE of a
		 * shared mapping writable without a fault when it is dirty
		 * (can_change_pte_writable()).  After the write-protection
		 * and its TLB flush no write can dirty a PTE again.
		 */
		clean_record_shared_mapping_range(mapping, at, n, at, sink,
						  &start, &end);
		wbdev_mark_gup(area, at, at + n - 1);
		at += n;
		if (at <= last)
			cond_resched();
	}
	bitmap_free(sink);
	/* a large folio came during the walks (wbdev_note_folio) */
	if (smp_load_acquire(&area->large))
		wbdev_mkclean_pgoffs(area, first, last);
}

/**
 * wbdev_protect_pgoffs() - write-protect pages [first, last] of an area
 * @area: the area
 * @first: first pgoff
 * @last: last pgoff (inclusive)
 *
 * Log entries stay.  Protecting the whole area ends its "unlogged" state
 * (wbdev_area.unlogged): no page of it is writable without a log entry.
 * Called with the mmap lock of the context's mm held.
 */
void wbdev_protect_pgoffs(struct wbdev_area *area, pgoff_t first,
			  pgoff_t last)
{
	if (first == 0 && last + 1 >= area->npages)
		WRITE_ONCE(area->unlogged, false);
	wbdev_wp_range(area, first, min_t(pgoff_t, last, area->npages - 1));
	atomic64_add(last - first + 1, &area->ctx->protected_pages);
}

/*
 * Remove page pgoff from the log.  Returns true if it was in the log.
 * WBDEV_TAKE_ONLY leaves the page as it is (writable if it was).
 * WBDEV_TAKE_MKCLEAN write-protects it first, under its folio lock.
 * WBDEV_TAKE_LOCKED clears its bit under its folio lock and leaves the
 * protection to the caller, which must write-protect it afterwards
 * (wbdev_wp_range()): a page_mkwrite that comes before the protection
 * sets the bit again, one that comes after finds the page protected, so
 * no write is lost between "reported" and "protected again".
 * With WBDEV_TAKE_MKCLEAN a page the kernel may write without a fault
 * (get_user_pages() pins or references: O_DIRECT, AIO,
 * process_vm_writev, /proc/PID/mem, ...; wbdev_folio_maybe_gup()) is
 * reported but stays in the log: it must be reported again until the
 * reference is gone (with WBDEV_TAKE_LOCKED, wbdev_wp_range() logs it
 * again).  folio_mkclean() takes the page table locks such a reference
 * is taken under (and fast GUP re-checks the PTE after taking it), so a
 * reference taken on a writable PTE is visible here once the folio is
 * clean.
 */
static bool wbdev_take(struct wbdev_area *area, pgoff_t pgoff,
		       enum wbdev_take_mode mode)
{
	struct address_space *mapping = area->shm->f_mapping;
	bool lock = mode != WBDEV_TAKE_ONLY;
	struct folio *folio = NULL;
	bool was, kept = false;

	for (;;) {
		if (lock) {
			folio = wbdev_lock_folio(mapping, pgoff);
			if (folio && mode == WBDEV_TAKE_MKCLEAN)
				folio_mkclean(folio);
		}
		spin_lock(&area->lock);
		/*
		 * Not resident when looked up but resident now: a fault has
		 * added it and its page_mkwrite may be running; look again so
		 * that it is taken under its lock.
		 */
		if (lock && !folio) {
			void *entry = xa_load(&mapping->i_pages, pgoff);

			if (entry && !xa_is_value(entry)) {
				spin_unlock(&area->lock);
				cond_resched();
				continue;
			}
		}
		/* wbdev_lock_folio() took one reference */
		if (mode == WBDEV_TAKE_MKCLEAN && folio &&
		    wbdev_folio_maybe_gup(folio, 1)) {
			was = test_bit(pgoff, area->dirty);
			kept = true;
		} else {
			was = __test_and_clear_bit(pgoff, area->dirty);
		}
		if (was && !kept) {
			area->ndirty--;
			wbdev_window_check(area);
		}
		spin_unlock(&area->lock);
		break;
	}
	if (folio) {
		folio_unlock(folio);
		folio_put(folio);
	}
	if (was && !kept)
		atomic_long_dec(&area->ctx->ndirty);
	return was;
}

/*
 * Take the log entries of pages [first, last) of area, mapped by vma,
 * into kbuf[n..max); returns the new n, and sets *next to the address to
 * resume from when kbuf is full.  With reprotect, dirty pages close
 * together (WBDEV_WP_MAX_GAP) are taken under their folio locks and then
 * write-protected by one walk; a page on its own is taken with
 * folio_mkclean().  When pages taken without re-protection may be
 * writable (area->unlogged) only adjacent pages share a walk.
 */
static long wbdev_collect_area(struct wbdev_area *area,
			       struct vm_area_struct *vma, pgoff_t first,
			       pgoff_t last, bool reprotect, u64 *kbuf, long n,
			       long max, unsigned long *next)
{
	pgoff_t gap = READ_ONCE(area->unlogged) ? 1 : WBDEV_WP_MAX_GAP;
	pgoff_t bit, nbit, span_first = 0, span_last = 0;
	bool span = false;

	if (!reprotect && first < last)
		WRITE_ONCE(area->unlogged, true);
	for (bit = find_next_bit(area->dirty, last, first); bit < last;
	     bit = nbit) {
		unsigned long at = vma->vm_start +
			((bit - vma->vm_pgoff) << PAGE_SHIFT);
		enum wbdev_take_mode mode = WBDEV_TAKE_ONLY;

		if (n == max) {
			*next = at;
			break;
		}
		nbit = find_next_bit(area->dirty, last, bit + 1);
		if (reprotect) {
			if (span && bit - span_last > gap) {
				wbdev_wp_range(area, span_first, span_last);
				span = false;
			}
			if (span || (nbit < last && nbit - bit <= gap &&
				     n + 1 < max))
				mode = WBDEV_TAKE_LOCKED;
			else
				mode = WBDEV_TAKE_MKCLEAN;
		}
		if (!wbdev_take(area, bit, mode))
			continue;
		kbuf[n++] = at;
		if (mode == WBDEV_TAKE_LOCKED) {
			if (!span)
				span_first = bit;
			span = true;
			span_last = bit;
		}
	}
	if (span)
		wbdev_wp_range(area, span_first, span_last);
	return n;
}

/*
 * Take up to max log entries with addresses in [start, end) into kbuf,
 * walking the VMAs in address order (a later mmap may lie in a hole that
 * a partial munmap left in an earlier one, so areas alone are not
 * ordered), each area only within its window of set bits.  *next is set
 * to the address to resume from, 0 when the range is done.  Called with
 * the mmap lock and ctx->lock held.
 */
static long wbdev_collect_locked(struct wbdev_ctx *ctx, unsigned long start,
				 unsigned long end, bool reprotect, u64 *kbuf,
				 long max, unsigned long *next)
{
	struct mm_struct *mm = ctx->mm;
	unsigned long addr = start;
	struct vm_area_struct *vma;
	long n = 0;

	mmap_assert_locked(mm);
	lockdep_assert_held(&ctx->lock);
	*next = 0;
	while (addr < end && (vma = find_vma(mm, addr)) &&
	       vma->vm_start < end) {
		struct wbdev_area *area;
		pgoff_t first, last;

		if (addr < vma->vm_start)
			addr = vma->vm_start;
		area = wbdev_vma_area(ctx, vma, addr);
		if (!area || !READ_ONCE(area->ndirty)) {
			addr = vma->vm_end;
			continue;
		}
		first = wbdev_vma_pgoff(vma, addr);
		last = wbdev_vma_pgoff(vma, min(end, vma->vm_end) - 1) + 1;
		last = min(last, area->npages);
		spin_lock(&area->lock);
		first = max(first, area->dfirst);
		if (area->dlast < last)
			last = area->dlast + 1;
		spin_unlock(&area->lock);
		if (first < last) {
			n = wbdev_collect_area(area, vma, first, last,
					       reprotect, kbuf, n, max, next);
			if (*next)
				return n;
		}
		addr = vma->vm_end;
	}
	return n;
}

/* Put entries back in the log after a failed copy to user space. */
static void wbdev_unread(struct wbdev_ctx *ctx, const u64 *kbuf, long n)
{
	struct mm_struct *mm = ctx->mm;
	long i;

	mmap_read_lock(mm);
	for (i = 0; i < n; i++) {
		struct vm_area_struct *vma = find_vma(mm, kbuf[i]);
		struct wbdev_area *area = wbdev_vma_area(ctx, vma, kbuf[i]);
		pgoff_t pgoff;
		bool first;

		if (!area)
			continue;
		pgoff = wbdev_vma_pgoff(vma, kbuf[i]);
		spin_lock(&area->lock);
		first = !__test_and_set_bit(pgoff, area->dirty);
		if (first) {
			area->ndirty++;
			wbdev_window_add(area, pgoff, pgoff);
		}
		spin_unlock(&area->lock);
		if (first)
			atomic_long_inc(&ctx->ndirty);
	}
	mmap_read_unlock(mm);
}

/*
 * Collect into a user buffer of max entries.  Returns the number stored or
 * a negative errno (-EFAULT only if nothing was stored; entries that could
 * not be stored are put back).
 */
long wbdev_collect_user(struct wbdev_ctx *ctx, unsigned long start,
			unsigned long end, bool reprotect,
			       u64 __user *ubuf, long max, unsigned long *next)
{
	u64 *kbuf;
	long done = 0;

	kbuf = kmalloc_array(WBDEV_CHUNK, sizeof(*kbuf), GFP_KERNEL);
	if (!kbuf)
		return -ENOMEM;
	*next = start;
	while (done < max) {
		long want = min_t(long, max - done, WBDEV_CHUNK);
		long n;

		if (mmap_read_lock_killable(ctx->mm)) {
			if (!done)
				done = -EINTR;
			break;
		}
		mutex_lock(&ctx->lock);
		n = wbdev_collect_locked(ctx, *next, end, reprotect, kbuf,
					 want, next);
		mutex_unlock(&ctx->lock);
		mmap_read_unlock(ctx->mm);
		if (copy_to_user(ubuf + done, kbuf, n * sizeof(*kbuf))) {
			wbdev_unread(ctx, kbuf, n);
			if (!done)
				done = -EFAULT;
			/* resume where the failed part began */
			*next = n ? kbuf[0] : *next;
			break;
		}
		done += n;
		if (!*next || fatal_signal_pending(current))
			break;
		cond_resched();
	}
	kfree(kbuf);
	return done;
}

/*
 * Log page pgoff of area as written.  The write fault taken by
 * wbdev_unprotect_chunk logs a protected page through page_mkwrite, but a
 * page whose PTE was writable already (collected without re-protection
 * since its last write) takes no page_mkwrite: log it here, under its
 * folio lock like page_mkwrite.  A page discarded meanwhile is logged all
 * the same (it reads as zero; conservative).
 */
void wbdev_mark_unprotected(struct wbdev_area *area, pgoff_t pgoff)
{
	struct folio *folio;

	if (pgoff >= area->npages || test_bit(pgoff, area->dirty))
		return;
	folio = wbdev_lock_folio(area->shm->f_mapping, pgoff);
	wbdev_mark(area, pgoff);
	if (folio) {
		folio_unlock(folio);
		folio_put(folio);
	}
}

/* Is page pgoff of area in memory (neither never touched nor swapped)? */
bool wbdev_resident(struct wbdev_area *area, pgoff_t pgoff)
{
	void *entry = xa_load(&area->shm->f_mapping->i_pages, pgoff);

	return entry && !xa_is_value(entry);
}
