// SPDX-License-Identifier: GPL-2.0
/*
 * wbdev_log.c - the dirty log of a wbdev area: recording writes, taking
 * entries out (collect) and write-protecting pages again.  Locking: see
 * wbdev_core.c.
 */
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
 * Record a write to pages [first, first + n) of area (clipped to the
 * area); called with their folio locked (if resident).
 */
void wbdev_mark_range(struct wbdev_area *area, pgoff_t first,
		      pgoff_t n)
{
	struct wbdev_ctx *ctx = area->ctx;
	pgoff_t end = min(first + n, area->npages), bit;
	unsigned long added = 0;

	spin_lock(&area->lock);
	for (bit = first; bit < end; bit++)
		added += !__test_and_set_bit(bit, area->dirty);
	area->ndirty += added;
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
	spin_unlock(&area->lock);
	if (cleared)
		atomic_long_sub(cleared, &area->ctx->ndirty);
}

void wbdev_protect_pgoffs(struct wbdev_area *area, pgoff_t first,
			  pgoff_t last)
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

			folio_lock(folio);
			if (folio->mapping == mapping) {
				folio_mkclean(folio);
				/* a pin may write it without a fault */
				if (folio_maybe_dma_pinned(folio))
					wbdev_mark_folio(area, folio);
			}
			folio_unlock(folio);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
	atomic64_add(last - first + 1, &area->ctx->protected_pages);
}

/*
 * Remove page pgoff from the log, write-protecting it first when asked.
 * Returns true if it was in the log.  A page that may be pinned for DMA
 * or by the kernel (get_user_pages with FOLL_PIN: O_DIRECT, AIO,
 * process_vm_writev, ...) is reported but stays in the log: a write
 * through the pin takes no fault, so it must be reported again until the
 * pin is gone.  folio_mkclean() takes the page table locks a pin is taken
 * under (and fast GUP re-checks the PTE after pinning), so a pin taken on
 * a writable PTE is visible here once the folio is clean.
 */
static bool wbdev_take(struct wbdev_area *area, pgoff_t pgoff, bool reprotect)
{
	struct address_space *mapping = area->shm->f_mapping;
	struct folio *folio = NULL;
	bool was, kept = false;

	for (;;) {
		if (reprotect) {
			folio = wbdev_lock_folio(mapping, pgoff);
			if (folio)
				folio_mkclean(folio);
		}
		spin_lock(&area->lock);
		/*
		 * Not resident when looked up but resident now: a fault has
		 * added it and its page_mkwrite may be running; look again so
		 * that it is protected under its lock.
		 */
		if (reprotect && !folio) {
			void *entry = xa_load(&mapping->i_pages, pgoff);

			if (entry && !xa_is_value(entry)) {
				spin_unlock(&area->lock);
				cond_resched();
				continue;
			}
		}
		if (folio && folio_maybe_dma_pinned(folio)) {
			was = test_bit(pgoff, area->dirty);
			kept = true;
		} else {
			was = __test_and_clear_bit(pgoff, area->dirty);
		}
		if (was && !kept)
			area->ndirty--;
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
 * Take up to max log entries with addresses in [start, end) into kbuf,
 * walking the VMAs in address order (a later mmap may lie in a hole that
 * a partial munmap left in an earlier one, so areas alone are not
 * ordered).  *next is set to the address to resume from, 0 when the range
 * is done.  Called with the mmap lock and ctx->lock held.
 */
static long wbdev_collect_locked(struct wbdev_ctx *ctx, unsigned long start,
				 unsigned long end, bool reprotect, u64 *kbuf,
				 long max, unsigned long *next)
{
	struct mm_struct *mm = ctx->mm;
	unsigned long addr = start;
	struct vm_area_struct *vma;
	long n = 0;

	*next = 0;
	while (addr < end && (vma = find_vma(mm, addr)) &&
	       vma->vm_start < end) {
		struct wbdev_area *area;
		pgoff_t first, last, bit;

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
		for (bit = find_next_bit(area->dirty, last, first); bit < last;
		     bit = find_next_bit(area->dirty, last, bit + 1)) {
			unsigned long at = vma->vm_start +
				((bit - vma->vm_pgoff) << PAGE_SHIFT);

			if (n == max) {
				*next = at;
				return n;
			}
			if (wbdev_take(area, bit, reprotect))
				kbuf[n++] = at;
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
		if (first)
			area->ndirty++;
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
