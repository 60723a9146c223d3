// SPDX-License-Identifier: GPL-2.0
/*
 * wbdev - write-barrier device for garbage collectors (/dev/wbdev).
 *
 * Each mmap of the device is backed by its own shmem file (swappable,
 * charged to the caller's memory cgroup).  Our vm_ops wrap shmem's fault
 * and add page_mkwrite, which records the first write to a write-protected
 * page in a per-mapping dirty bitmap; folio_mkclean() write-protects pages
 * again.  The user-visible semantics are documented in
 * include/uapi/linux/wbdev.h (os_dep/include/linux/wbdev.h) and wbdev(4).
 *
 * Locking order: mmap_lock -> ctx->lock -> folio lock -> area->lock.
 * area->lock (a spinlock) guards the bitmap and ndirty of one area; a bit
 * is set only with the page's folio locked (page_mkwrite), and cleared for
 * re-protection only after folio_mkclean() under the same folio lock, so a
 * write can never slip between "reported" and "protected again".
 * WBDEV_IOC_UNPROTECT takes write faults holding only the mmap lock for
 * reading, as a fault of the process would.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/rmap.h>
#include <linux/shmem_fs.h>
#include <linux/falloc.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include <linux/highmem.h>
#include <linux/kref.h>

#include "wbdev_compat.h"
#include "linux/wbdev.h"

/* Entries moved between user and kernel buffers per step. */
#define WBDEV_CHUNK 512

/*
 * Largest mapping: its log bitmap (npages / 8 bytes, 32 MiB here) is
 * allocated at mmap, before any page, so an absurd MAP_NORESERVE size must
 * fail cleanly (ENOMEM) instead of asking kvmalloc for gigabytes.
 */
#define WBDEV_MAX_MAP_PAGES (1UL << (40 - PAGE_SHIFT))	/* 1 TiB */

/*
 * Log bitmaps are charged to the caller's memory cgroup; a charge that
 * does not fit fails with ENOMEM (no OOM kill, no allocation warning).
 */
#define WBDEV_GFP_BITMAP \
	(GFP_KERNEL_ACCOUNT | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

struct wbdev_ctx {
	struct kref ref;
	struct mm_struct *mm;		/* opener's mm, mmgrab'ed */
	struct mutex lock;		/* areas, pending */
	struct list_head areas;		/* sorted by base */
	struct list_head pending;	/* claimed fork copies, not mapped */
	wait_queue_head_t wq;
	atomic_long_t ndirty;		/* log entries over all areas */
	atomic64_t recorded;
	atomic64_t protected_pages;
	atomic64_t fork_copies;
	int fork_mode;			/* WBDEV_FORK_* */
};

/* One mmap: a shmem file and its log. */
struct wbdev_area {
	struct list_head node;
	struct wbdev_ctx *ctx;
	struct file *shm;
	unsigned long base;		/* user address of file page 0 */
	pgoff_t npages;
	unsigned long *dirty;		/* bitmap of logged pages */
	unsigned long ndirty;
	spinlock_t lock;		/* dirty, ndirty */
	atomic_t nvmas;			/* VMAs of ctx->mm using this area */
};

/* Copy of a parent's VMA made at fork for the child to claim. */
struct wbdev_clone {
	struct kref ref;
	struct list_head node;		/* claimer's pending list */
	struct wbdev_ctx *src;		/* parent's context (pointer only) */
	struct mm_struct *mm;		/* child's mm (pointer only) */
	struct file *shm;
	unsigned long start;
	pgoff_t npages;
	unsigned long *dirty;		/* pages copied: reported as written */
	unsigned long ndirty;
	bool claimed;
};

static const struct vm_operations_struct wbdev_vm_ops;
static const struct vm_operations_struct wbdev_stub_vm_ops;
static const struct file_operations wbdev_fops;
/* shmem's vm_ops, whose fault and map_pages we call. */
static const struct vm_operations_struct *wbdev_shmem_vm_ops;
static const struct file_operations wbdev_shm_fops;
/* A private tmpfs mounted huge=never: our files get no huge folios. */
static struct vfsmount *wbdev_mnt __ro_after_init;

static void wbdev_ctx_free(struct kref *ref)
{
	struct wbdev_ctx *ctx = container_of(ref, struct wbdev_ctx, ref);

	mmdrop(ctx->mm);
	kfree(ctx);
}

static void wbdev_ctx_put(struct wbdev_ctx *ctx)
{
	kref_put(&ctx->ref, wbdev_ctx_free);
}

static void wbdev_clone_free(struct kref *ref)
{
	struct wbdev_clone *clone = container_of(ref, struct wbdev_clone, ref);

	fput(clone->shm);
	kvfree(clone->dirty);
	kfree(clone);
}

static void wbdev_clone_put(struct wbdev_clone *clone)
{
	kref_put(&clone->ref, wbdev_clone_free);
}

/*
 * Record a write to pages [first, first + n) of area (clipped to the
 * area); called with their folio locked (if resident).
 */
static void wbdev_mark_range(struct wbdev_area *area, pgoff_t first,
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

static void wbdev_mark(struct wbdev_area *area, pgoff_t pgoff)
{
	wbdev_mark_range(area, pgoff, 1);
}

/*
 * Record a write to every page of a locked folio of area.  A large folio
 * (only shmem_enabled=force or MADV_COLLAPSE can give our files one) may
 * be mapped writable by one PMD after a single page_mkwrite: its other
 * pages would take no fault, so all of them count as written.
 */
static void wbdev_mark_folio(struct wbdev_area *area, struct folio *folio)
{
	wbdev_mark_range(area, folio->index, folio_nr_pages(folio));
}

/* Drop log entries of [first, first + n) of area. */
static void wbdev_unmark_range(struct wbdev_area *area, pgoff_t first,
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

static void wbdev_protect_pgoffs(struct wbdev_area *area, pgoff_t first,
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

/* The area of this context mapped by vma, or NULL. */
static struct wbdev_area *wbdev_vma_area(struct wbdev_ctx *ctx,
					 struct vm_area_struct *vma,
					 unsigned long addr)
{
	struct wbdev_area *area;

	if (!vma || addr < vma->vm_start || vma->vm_ops != &wbdev_vm_ops)
		return NULL;
	area = vma->vm_private_data;
	return area->ctx == ctx ? area : NULL;
}

static pgoff_t wbdev_vma_pgoff(struct vm_area_struct *vma, unsigned long addr)
{
	return vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
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
static long wbdev_collect_user(struct wbdev_ctx *ctx, unsigned long start,
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

/* ---- VMAs ---- */

static vm_fault_t wbdev_fault(struct vm_fault *vmf)
{
	return wbdev_shmem_vm_ops->fault(vmf);
}

static vm_fault_t wbdev_map_pages(struct vm_fault *vmf, pgoff_t start,
				  pgoff_t end)
{
	return wbdev_shmem_vm_ops->map_pages(vmf, start, end);
}

static vm_fault_t wbdev_page_mkwrite(struct vm_fault *vmf)
{
	struct wbdev_area *area = vmf->vma->vm_private_data;
	struct folio *folio = page_folio(vmf->page);

	folio_lock(folio);
	if (folio->mapping != area->shm->f_mapping) {
		/* truncated (discarded) meanwhile: let the fault retry */
		folio_unlock(folio);
		return VM_FAULT_NOPAGE;
	}
	wbdev_mark_folio(area, folio);
	folio_mark_dirty(folio);
	/* The PTE becomes writable before the folio is unlocked. */
	return VM_FAULT_LOCKED;
}

/* Free the memory and log of an unmapped part of an area (n > 0). */
static void wbdev_area_drop_range(struct wbdev_area *area, pgoff_t first,
				  pgoff_t n)
{
	wbdev_unmark_range(area, first, n);
	shmem_truncate_range(file_inode(area->shm),
			     (loff_t)first << PAGE_SHIFT,
			     ((loff_t)(first + n) << PAGE_SHIFT) - 1);
}

/* Free the pages of addresses [from, to) of area (mapped at area->base). */
static void wbdev_area_drop_addrs(struct wbdev_area *area, unsigned long from,
				  unsigned long to)
{
	if (from < to)
		wbdev_area_drop_range(area, (from - area->base) >> PAGE_SHIFT,
				      (to - from) >> PAGE_SHIFT);
}

/*
 * A VMA of area is gone: free the pages of its range that no other VMA of
 * area still maps.  Another VMA can map them when mm undoes a failed
 * operation: a move_vma() whose page tables moved only in part (ENOMEM)
 * unmaps the new VMA without calling ->mremap, and a refused mremap does
 * the same; a failed split on 6.1 closes an empty VMA (pgoff 0, no pages).
 * As moves are refused, a live VMA of area maps page pgoff at
 * area->base + pgoff pages, so the VMAs there tell what is still mapped.
 * The gone VMA is no longer in the mm's tree (checked all the same).
 */
static void wbdev_area_drop_unmapped(struct wbdev_area *area,
				     struct vm_area_struct *gone)
{
	struct mm_struct *mm = gone->vm_mm;
	pgoff_t first = gone->vm_pgoff, end = first + vma_pages(gone);
	unsigned long addr, hole, stop;

	mmap_assert_locked(mm);
	end = min(end, area->npages);
	if (first >= end)
		return;
	addr = area->base + (first << PAGE_SHIFT);
	stop = area->base + (end << PAGE_SHIFT);
	for (hole = addr; addr < stop;) {
		struct vm_area_struct *vma = find_vma(mm, addr);

		if (!vma || vma->vm_start >= stop)
			break;
		if (vma != gone && vma->vm_ops == &wbdev_vm_ops &&
		    vma->vm_private_data == area) {
			wbdev_area_drop_addrs(area, hole,
					      max(hole, vma->vm_start));
			hole = max(hole, vma->vm_end);
		}
		addr = vma->vm_end;
	}
	wbdev_area_drop_addrs(area, hole, max(hole, stop));
}

/*
 * The last VMA of area is gone.  Free all its memory now: fork stubs
 * still hold the shmem file, and must not keep its pages.
 */
static void wbdev_area_release(struct wbdev_area *area)
{
	struct wbdev_ctx *ctx = area->ctx;

	mutex_lock(&ctx->lock);
	list_del(&area->node);
	atomic_long_sub(area->ndirty, &ctx->ndirty);
	mutex_unlock(&ctx->lock);
	shmem_truncate_range(file_inode(area->shm), 0, -1);
	fput(area->shm);
	kvfree(area->dirty);
	kfree(area);
	wbdev_ctx_put(ctx);
}

/* A new shmem file of npages for a mapping or a fork copy. */
static struct file *wbdev_shm_create(pgoff_t npages, unsigned long flags)
{
	return shmem_file_setup_with_mnt(wbdev_mnt, "wbdev",
					 (loff_t)npages << PAGE_SHIFT, flags);
}

/*
 * fallocate of our shmem files: only the punching of madvise(MADV_REMOVE)
 * and WBDEV_IOC_DISCARD.  A page faulted in meanwhile is truncated too
 * and reads zero, as it would after the punch.
 */
static long wbdev_shm_fallocate(struct file *shm, int mode, loff_t off,
				loff_t len)
{
	if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0 || off + len < off)
		return -EINVAL;
	unmap_mapping_range(shm->f_mapping, off, len, 0);
	shmem_truncate_range(file_inode(shm), off, off + len - 1);
	return 0;
}

/*
 * The file operations of our shmem files once mapped (wbdev_mmap), in
 * place of shmem's: no mmap.  A VMA keeps its shmem file as vm_file,
 * and remap_file_pages() would otherwise mmap that file again, giving
 * plain (untracked) shmem mappings of any pgoff, in the process itself
 * or in a fork child holding a stub.  Nothing else reaches these files
 * through their file operations: they are in no file table.
 */
static const struct file_operations wbdev_shm_fops = {
	.owner = THIS_MODULE,
	.fsync = noop_fsync,		/* msync(MS_SYNC) */
	.fallocate = wbdev_shm_fallocate,
};

/*
 * Fork with WBDEV_FORK_COPY: copy the parent's pages of this VMA into a new
 * shmem file for the child.  Called from dup_mmap() with the parent's mmap
 * lock held for writing (and, from 6.4, every parent VMA write-locked), so
 * no parent fault can complete until fork() returns; write-protecting the
 * parent's pages first stops writes through existing PTEs too.  The copy
 * is therefore the memory at one instant.
 */
static struct wbdev_clone *wbdev_fork_copy(struct vm_area_struct *vma,
					   struct wbdev_area *area)
{
	struct address_space *src = area->shm->f_mapping;
	pgoff_t first = vma->vm_pgoff, n = vma_pages(vma), i;
	struct wbdev_clone *clone;
	struct file *shm;

	if (first >= area->npages || n > area->npages - first)
		return NULL;
	clone = kzalloc(sizeof(*clone), GFP_KERNEL_ACCOUNT);
	if (!clone)
		return NULL;
	clone->dirty = kvcalloc(BITS_TO_LONGS(n), sizeof(long),
				WBDEV_GFP_BITMAP);
	shm = wbdev_shm_create(n, VM_NORESERVE);
	if (!clone->dirty || IS_ERR(shm)) {
		if (!IS_ERR(shm))
			fput(shm);
		kvfree(clone->dirty);
		kfree(clone);
		return NULL;
	}
	kref_init(&clone->ref);
	INIT_LIST_HEAD(&clone->node);
	clone->src = area->ctx;
	clone->mm = vma->vm_mm;
	clone->shm = shm;
	clone->start = vma->vm_start;
	clone->npages = n;

	wbdev_protect_pgoffs(area, first, first + n - 1);
	/*
	 * Only the pages present (resident or swapped) are visited: a hole
	 * reads zero in the copy too.  A large folio is one multi-index
	 * entry, which xa_find may report at its first index: never step
	 * back.
	 */
	for (i = 0; i < n; i++) {
		unsigned long at = first + i;
		struct page *from, *to;

		if (!xa_find(&src->i_pages, &at, first + n - 1, XA_PRESENT))
			break;
		i = max(at, first + i) - first;
		from = shmem_read_mapping_page_gfp(src, first + i,
						   mapping_gfp_mask(src));
		if (IS_ERR(from))
			goto fail;
		to = shmem_read_mapping_page_gfp(shm->f_mapping, i,
						 mapping_gfp_mask(shm->f_mapping));
		if (IS_ERR(to)) {
			put_page(from);
			goto fail;
		}
		copy_highpage(to, from);
		folio_mark_dirty(page_folio(to));
		put_page(to);
		put_page(from);
		__set_bit(i, clone->dirty);
		clone->ndirty++;
		if (fatal_signal_pending(current))
			goto fail;
		cond_resched();
	}
	atomic64_inc(&area->ctx->fork_copies);
	return clone;
fail:
	wbdev_clone_put(clone);
	return NULL;
}

static void wbdev_vm_open(struct vm_area_struct *vma)
{
	struct wbdev_area *area = vma->vm_private_data;

	__module_get(THIS_MODULE);
	if (vma->vm_mm == area->ctx->mm) {
		/* split, or mremap's copy */
		atomic_inc(&area->nvmas);
		return;
	}
	/*
	 * fork: the child's VMA shares the parent's shmem file.  It must
	 * never reach the parent's pages: turn it into a stub that faults
	 * with SIGBUS and cannot be made writable, holding the copy (if
	 * armed) for the child to claim.
	 */
	vma->vm_ops = &wbdev_stub_vm_ops;
	vma->vm_private_data = NULL;
	wbdev_vma_deny_write(vma);
	if (READ_ONCE(area->ctx->fork_mode) == WBDEV_FORK_COPY)
		vma->vm_private_data = wbdev_fork_copy(vma, area);
}

static void wbdev_vm_close(struct vm_area_struct *vma)
{
	struct wbdev_area *area = vma->vm_private_data;

	if (atomic_dec_and_test(&area->nvmas))
		wbdev_area_release(area);
	else if (atomic_read(&vma->vm_mm->mm_users))
		wbdev_area_drop_unmapped(area, vma);
	module_put(THIS_MODULE);
}

/*
 * Moving a mapping would change the addresses the log reports; refuse.
 * mm moves the page tables back and unmaps new_vma, which frees nothing
 * the original VMA still maps (wbdev_area_drop_unmapped).
 */
static int wbdev_vm_mremap(struct vm_area_struct *new_vma)
{
	return -EINVAL;
}

static const char *wbdev_vm_name(struct vm_area_struct *vma)
{
	return "[wbdev]";
}

static const struct vm_operations_struct wbdev_vm_ops = {
	.open = wbdev_vm_open,
	.close = wbdev_vm_close,
	.mremap = wbdev_vm_mremap,
	.fault = wbdev_fault,
	.map_pages = wbdev_map_pages,
	.page_mkwrite = wbdev_page_mkwrite,
	.name = wbdev_vm_name,
};

/* ---- fork stubs (VMAs a child inherited) ---- */

static void wbdev_stub_open(struct vm_area_struct *vma)
{
	struct wbdev_clone *clone = vma->vm_private_data;

	__module_get(THIS_MODULE);
	if (!clone)
		return;
	if (vma->vm_mm == clone->mm)
		kref_get(&clone->ref);	/* mremap's copy, soon refused */
	else
		vma->vm_private_data = NULL;	/* a grandchild: no copy */
}

static void wbdev_stub_close(struct vm_area_struct *vma)
{
	struct wbdev_clone *clone = vma->vm_private_data;

	if (clone)
		wbdev_clone_put(clone);
	module_put(THIS_MODULE);
}

static vm_fault_t wbdev_stub_fault(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

static int wbdev_stub_may_split(struct vm_area_struct *vma,
				unsigned long addr)
{
	return -EINVAL;
}

static int wbdev_stub_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

static int wbdev_stub_mprotect(struct vm_area_struct *vma,
			       unsigned long start, unsigned long end,
			       unsigned long newflags)
{
	return (newflags & VM_WRITE) ? -EACCES : 0;
}

static const char *wbdev_stub_name(struct vm_area_struct *vma)
{
	return "[wbdev-fork-stub]";
}

static const struct vm_operations_struct wbdev_stub_vm_ops = {
	.open = wbdev_stub_open,
	.close = wbdev_stub_close,
	.may_split = wbdev_stub_may_split,
	.mremap = wbdev_stub_mremap,
	.mprotect = wbdev_stub_mprotect,
	.fault = wbdev_stub_fault,
	.page_mkwrite = wbdev_stub_fault,
	.name = wbdev_stub_name,
};

/* ---- file operations ---- */

static int wbdev_open(struct inode *inode, struct file *file)
{
	struct wbdev_ctx *ctx;

	if (!current->mm)
		return -EPERM;
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return -ENOMEM;
	kref_init(&ctx->ref);
	mutex_init(&ctx->lock);
	INIT_LIST_HEAD(&ctx->areas);
	INIT_LIST_HEAD(&ctx->pending);
	init_waitqueue_head(&ctx->wq);
	ctx->mm = current->mm;
	mmgrab(ctx->mm);
	file->private_data = ctx;
	return 0;
}

static int wbdev_release(struct inode *inode, struct file *file)
{
	struct wbdev_ctx *ctx = file->private_data;
	struct wbdev_clone *clone, *tmp;

	mutex_lock(&ctx->lock);
	list_for_each_entry_safe(clone, tmp, &ctx->pending, node) {
		list_del_init(&clone->node);
		wbdev_clone_put(clone);
	}
	mutex_unlock(&ctx->lock);
	wbdev_ctx_put(ctx);
	return 0;
}

static struct wbdev_clone *wbdev_take_pending(struct wbdev_ctx *ctx,
					      struct vm_area_struct *vma)
{
	struct wbdev_clone *clone;

	list_for_each_entry(clone, &ctx->pending, node) {
		if (clone->start == vma->vm_start &&
		    clone->npages == vma_pages(vma)) {
			list_del_init(&clone->node);
			return clone;
		}
	}
	return NULL;
}

static int wbdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct wbdev_ctx *ctx = file->private_data;
	struct wbdev_clone *clone;
	struct wbdev_area *area, *pos;
	pgoff_t npages = vma_pages(vma);
	struct file *shm;
	int ret;

	if (current->mm != ctx->mm || vma->vm_mm != ctx->mm)
		return -EPERM;
	if (!(vma->vm_flags & VM_SHARED) || vma->vm_pgoff)
		return -EINVAL;
	if (npages > WBDEV_MAX_MAP_PAGES)
		return -ENOMEM;
	area = kzalloc(sizeof(*area), GFP_KERNEL_ACCOUNT);
	if (!area)
		return -ENOMEM;

	mutex_lock(&ctx->lock);
	clone = wbdev_take_pending(ctx, vma);
	mutex_unlock(&ctx->lock);
	if (clone) {
		/* the child maps the copy made for it at fork */
		shm = get_file(clone->shm);
		area->dirty = clone->dirty;
		area->ndirty = clone->ndirty;
		clone->dirty = NULL;
		wbdev_clone_put(clone);
	} else {
		area->dirty = kvcalloc(BITS_TO_LONGS(npages), sizeof(long),
				       WBDEV_GFP_BITMAP);
		if (!area->dirty) {
			ret = -ENOMEM;
			goto fail_area;
		}
		shm = wbdev_shm_create(npages, vma->vm_flags & VM_NORESERVE);
		if (IS_ERR(shm)) {
			ret = PTR_ERR(shm);
			goto fail_area;
		}
	}

	/* The VMA maps the shmem file from now on; shmem sets its ops. */
	vma_set_file(vma, shm);
	fput(shm);
	ret = shm->f_op->mmap(shm, vma);
	if (ret)
		goto fail_dirty;
	/*
	 * No more mmap of shm (wbdev_shm_fops); replace_fops() takes no
	 * reference of its own, the file's last fput drops this one.
	 */
	__module_get(THIS_MODULE);
	replace_fops(shm, &wbdev_shm_fops);
	if (!wbdev_shmem_vm_ops)
		wbdev_shmem_vm_ops = vma->vm_ops;
	if (vma->vm_ops != wbdev_shmem_vm_ops &&
	    (vma->vm_ops->fault != wbdev_shmem_vm_ops->fault ||
	     vma->vm_ops->map_pages != wbdev_shmem_vm_ops->map_pages)) {
		ret = -ENODEV;
		goto fail_dirty;
	}

	spin_lock_init(&area->lock);
	atomic_set(&area->nvmas, 1);
	area->ctx = ctx;
	area->shm = get_file(shm);
	area->base = vma->vm_start;
	area->npages = npages;
	kref_get(&ctx->ref);

	/*
	 * No huge mappings (wbdev_mark_folio): our mount gives no huge
	 * folios, and VM_NOHUGEPAGE keeps khugepaged away and stops a
	 * PMD mapping at fault on 6.12 (madvise(MADV_HUGEPAGE) can clear it).
	 */
	wbdev_vm_flags_set(vma, VM_DONTEXPAND | VM_NOHUGEPAGE);
	vma->vm_ops = &wbdev_vm_ops;
	vma->vm_private_data = area;
	__module_get(THIS_MODULE);

	mutex_lock(&ctx->lock);
	list_for_each_entry(pos, &ctx->areas, node)
		if (pos->base > area->base)
			break;
	list_add_tail(&area->node, &pos->node);
	if (area->ndirty &&
	    atomic_long_add_return(area->ndirty, &ctx->ndirty) ==
	    area->ndirty)
		wake_up_interruptible_poll(&ctx->wq, EPOLLIN | EPOLLRDNORM);
	mutex_unlock(&ctx->lock);
	return 0;

fail_dirty:
	/* mm drops the VMA's reference to shm */
fail_area:
	kvfree(area->dirty);
	kfree(area);
	return ret;
}

static ssize_t wbdev_write(struct file *file, const char __user *buf,
			   size_t count, loff_t *ppos)
{
	struct wbdev_ctx *ctx = file->private_data;
	struct mm_struct *mm = current->mm;
	size_t n = count / sizeof(u64), done = 0;
	ssize_t err = 0;
	u64 *kbuf;

	if (mm != ctx->mm)
		return -EPERM;
	if (count % sizeof(u64))
		return -EINVAL;
	if (!n)
		return 0;
	kbuf = kmalloc_array(WBDEV_CHUNK, sizeof(*kbuf), GFP_KERNEL);
	if (!kbuf)
		return -ENOMEM;
	while (done < n && !err) {
		size_t i, want = min_t(size_t, n - done, WBDEV_CHUNK);
		struct vm_area_struct *vma = NULL;

		if (copy_from_user(kbuf, buf + done * sizeof(u64),
				   want * sizeof(u64))) {
			err = -EFAULT;
			break;
		}
		if (mmap_read_lock_killable(mm)) {
			err = -EINTR;
			break;
		}
		for (i = 0; i < want; i++) {
			unsigned long addr = kbuf[i];
			struct wbdev_area *area;
			pgoff_t pgoff;

			if (!vma || addr < vma->vm_start ||
			    addr >= vma->vm_end)
				vma = find_vma(mm, addr);
			area = wbdev_vma_area(ctx, vma, addr);
			if (!area) {
				err = -EFAULT;
				break;
			}
			pgoff = wbdev_vma_pgoff(vma, addr);
			wbdev_protect_pgoffs(area, pgoff, pgoff);
			done++;
		}
		mmap_read_unlock(mm);
		if (fatal_signal_pending(current) && !err)
			err = -EINTR;
		cond_resched();
	}
	kfree(kbuf);
	return done ? done * sizeof(u64) : err;
}

static ssize_t wbdev_read(struct file *file, char __user *buf, size_t count,
			  loff_t *ppos)
{
	struct wbdev_ctx *ctx = file->private_data;
	unsigned long next;
	long n;

	if (current->mm != ctx->mm)
		return -EPERM;
	if (count % sizeof(u64) || count < sizeof(u64))
		return -EINVAL;
	n = wbdev_collect_user(ctx, 0, ULONG_MAX, false, (u64 __user *)buf,
			       min_t(size_t, count / sizeof(u64), LONG_MAX / 8),
			       &next);
	return n < 0 ? n : n * (ssize_t)sizeof(u64);
}

static __poll_t wbdev_poll(struct file *file, poll_table *wait)
{
	struct wbdev_ctx *ctx = file->private_data;

	poll_wait(file, &ctx->wq, wait);
	return atomic_long_read(&ctx->ndirty) ? EPOLLIN | EPOLLRDNORM : 0;
}

/*
 * Check that [start, start + len) is page aligned and all mapped by this
 * context, with every flag of need (-EACCES if not); called with the mmap
 * lock held.
 */
static int wbdev_check_range(struct wbdev_ctx *ctx, struct mm_struct *mm,
			     u64 start, u64 len, unsigned long need)
{
	unsigned long addr = start;

	if (start % PAGE_SIZE || len % PAGE_SIZE || !len ||
	    start + len < start || start + len > TASK_SIZE)
		return -EINVAL;
	while (addr < start + len) {
		struct vm_area_struct *vma = find_vma(mm, addr);

		if (!wbdev_vma_area(ctx, vma, addr))
			return -EFAULT;
		if ((vma->vm_flags & need) != need)
			return -EACCES;
		addr = vma->vm_end;
	}
	return 0;
}

/*
 * Copy the struct wbdev_range argument of an ioctl, take the mmap lock
 * for reading and check the range (wbdev_check_range).  Returns 0 with
 * the lock held, or an error without it.
 */
static int wbdev_lock_range(struct wbdev_ctx *ctx, void __user *uarg,
			    struct wbdev_range *r, unsigned long need)
{
	struct mm_struct *mm = current->mm;
	int ret;

	if (copy_from_user(r, uarg, sizeof(*r)))
		return -EFAULT;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	ret = wbdev_check_range(ctx, mm, r->start, r->len, need);
	if (ret)
		mmap_read_unlock(mm);
	return ret;
}

static long wbdev_ioc_protect(struct wbdev_ctx *ctx, void __user *uarg)
{
	struct mm_struct *mm = current->mm;
	struct wbdev_range r;
	unsigned long addr;
	int ret;

	ret = wbdev_lock_range(ctx, uarg, &r, 0);
	if (ret)
		return ret;
	for (addr = r.start; addr < r.start + r.len;) {
		struct vm_area_struct *vma = find_vma(mm, addr);
		unsigned long end = min_t(unsigned long, vma->vm_end,
					  r.start + r.len);

		wbdev_protect_pgoffs(vma->vm_private_data,
				     wbdev_vma_pgoff(vma, addr),
				     wbdev_vma_pgoff(vma, end - 1));
		addr = end;
	}
	mmap_read_unlock(mm);
	return 0;
}

static long wbdev_ioc_discard(struct wbdev_ctx *ctx, void __user *uarg)
{
	struct mm_struct *mm = current->mm;
	struct wbdev_range r;
	unsigned long addr;
	int ret;

	ret = wbdev_lock_range(ctx, uarg, &r, 0);
	if (ret)
		return ret;
	mmap_read_unlock(mm);
	/* fallocate takes the inode lock: not under the mmap lock */
	for (addr = r.start; !ret && addr < r.start + r.len;) {
		struct vm_area_struct *vma;
		struct wbdev_area *area;
		unsigned long end;
		struct file *shm;
		loff_t off;

		if (mmap_read_lock_killable(mm))
			return -EINTR;
		vma = find_vma(mm, addr);
		area = wbdev_vma_area(ctx, vma, addr);
		if (!area) {
			mmap_read_unlock(mm);
			return -EFAULT;
		}
		end = min_t(unsigned long, vma->vm_end, r.start + r.len);
		off = (loff_t)wbdev_vma_pgoff(vma, addr) << PAGE_SHIFT;
		shm = get_file(area->shm);
		mmap_read_unlock(mm);
		ret = vfs_fallocate(shm, FALLOC_FL_PUNCH_HOLE |
				    FALLOC_FL_KEEP_SIZE, off, end - addr);
		fput(shm);
		addr = end;
	}
	return ret;
}

/*
 * Log page pgoff of area as written.  The write fault taken by
 * wbdev_unprotect_chunk logs a protected page through page_mkwrite, but a
 * page whose PTE was writable already (collected without re-protection
 * since its last write) takes no page_mkwrite: log it here, under its
 * folio lock like page_mkwrite.  A page discarded meanwhile is logged all
 * the same (it reads as zero; conservative).
 */
static void wbdev_mark_unprotected(struct wbdev_area *area, pgoff_t pgoff)
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
static bool wbdev_resident(struct wbdev_area *area, pgoff_t pgoff)
{
	void *entry = xa_load(&area->shm->f_mapping->i_pages, pgoff);

	return entry && !xa_is_value(entry);
}

/*
 * Make up to WBDEV_CHUNK pages from *addr on (below end) writable and
 * logged, advancing *addr past the pages done; called with the mmap lock
 * held for reading, the range checked.  Each page takes a write fault on
 * the process's behalf, as if it wrote there: page_mkwrite logs a
 * protected page.  A page not in memory is only logged: allocating it
 * would cost as much as the fault its first write takes anyway, and a
 * collector unprotects free memory it may not use soon.  fixup_user_fault
 * may drop and retake the mmap lock (unlocked): the VMA is then looked up
 * again and must still be this context's, else EFAULT.  (Its own retry
 * faults the same address in whatever is mapped there by then, exactly as
 * the process's write would.)  A fatal signal gives EINTR.
 */
static int wbdev_unprotect_chunk(struct wbdev_ctx *ctx, struct mm_struct *mm,
				 unsigned long *addr, unsigned long end)
{
	unsigned long stop = min(end, *addr + WBDEV_CHUNK * PAGE_SIZE);
	struct vm_area_struct *vma = NULL;
	struct wbdev_area *area = NULL;
	int ret;

	for (; *addr < stop; *addr += PAGE_SIZE) {
		bool unlocked = false;

		if (!area || *addr >= vma->vm_end) {
			vma = find_vma(mm, *addr);
			area = wbdev_vma_area(ctx, vma, *addr);
			if (!area)
				return -EFAULT;
			if (!(vma->vm_flags & VM_WRITE))
				return -EACCES;
		}
		if (!wbdev_resident(area, wbdev_vma_pgoff(vma, *addr))) {
			/*
			 * Its first write faults anyway, to allocate it (or
			 * swap it in): log it, allocate nothing.
			 */
			wbdev_mark_unprotected(area,
					       wbdev_vma_pgoff(vma, *addr));
			continue;
		}
		ret = fixup_user_fault(mm, *addr, FAULT_FLAG_WRITE, &unlocked);
		if (ret)
			return ret;
		if (unlocked) {
			/* the lock was dropped: vma may be gone */
			vma = find_vma(mm, *addr);
			area = wbdev_vma_area(ctx, vma, *addr);
			if (!area)
				return -EFAULT;
		}
		wbdev_mark_unprotected(area, wbdev_vma_pgoff(vma, *addr));
	}
	return 0;
}

/*
 * Make a range writable ahead of writes the caller knows are coming, all
 * of it logged as written.  The range is checked first (nothing changes
 * on EINVAL, EFAULT or EACCES); an error or fatal signal later leaves the
 * pages done writable and logged, which loses no write.  User memory is
 * only read before the mmap lock is taken.
 */
static long wbdev_ioc_unprotect(struct wbdev_ctx *ctx, void __user *uarg)
{
	struct mm_struct *mm = current->mm;
	struct wbdev_range r;
	unsigned long addr;
	int ret;

	ret = wbdev_lock_range(ctx, uarg, &r, VM_WRITE);
	if (ret)
		return ret;
	for (addr = r.start;;) {
		ret = wbdev_unprotect_chunk(ctx, mm, &addr, r.start + r.len);
		if (ret || addr >= r.start + r.len)
			break;
		mmap_read_unlock(mm);
		cond_resched();
		if (fatal_signal_pending(current) ||
		    mmap_read_lock_killable(mm))
			return -EINTR;
	}
	mmap_read_unlock(mm);
	return ret;
}

static long wbdev_ioc_collect(struct wbdev_ctx *ctx, void __user *uarg)
{
	struct wbdev_collect_arg a;
	unsigned long next, end;
	long n;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.flags & ~WBDEV_IOC_COLLECT_REPROTECT || a.pad)
		return -EINVAL;
	if (a.start >= TASK_SIZE || a.len > TASK_SIZE)
		return -EINVAL;
	end = a.len ? a.start + a.len : TASK_SIZE;
	if (end > TASK_SIZE || end < a.start)
		return -EINVAL;
	if (!a.max) {
		a.count = 0;
		a.next = a.start;
		return copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
	}
	n = wbdev_collect_user(ctx, a.start, end, a.flags &
			       WBDEV_IOC_COLLECT_REPROTECT,
			       u64_to_user_ptr(a.buf),
			       min_t(u64, a.max, LONG_MAX / 8), &next);
	if (n < 0)
		return n;
	a.count = n;
	a.next = next;
	if (copy_to_user(uarg, &a, sizeof(a))) {
		/* the entries were delivered to buf: nothing to undo */
		return -EFAULT;
	}
	return 0;
}

static long wbdev_ioc_info(struct wbdev_ctx *ctx, void __user *uarg)
{
	struct wbdev_info info = {
		.version = WBDEV_VERSION,
		.features = WBDEV_FEAT_KERNEL_WRITES |
			    WBDEV_FEAT_COLLECT_REPROTECT |
			    WBDEV_FEAT_FORK_COPY,
	};
	struct wbdev_area *area;

	mutex_lock(&ctx->lock);
	list_for_each_entry(area, &ctx->areas, node) {
		info.mappings++;
		info.mapped_pages += area->npages;
	}
	mutex_unlock(&ctx->lock);
	info.dirty_pages = atomic_long_read(&ctx->ndirty);
	info.recorded = atomic64_read(&ctx->recorded);
	info.protected_pages = atomic64_read(&ctx->protected_pages);
	info.fork_copies = atomic64_read(&ctx->fork_copies);
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static bool wbdev_claimable(struct vm_area_struct *vma,
			    struct wbdev_ctx *old, struct mm_struct *mm)
{
	struct wbdev_clone *clone = vma->vm_private_data;

	return vma->vm_ops == &wbdev_stub_vm_ops && clone &&
	       clone->src == old && clone->mm == mm && !clone->claimed;
}

/*
 * Give back claims of wbdev_ioc_fork_claim whose ranges could not be
 * returned, unless an mmap has taken the copy meanwhile.
 */
static void wbdev_unclaim(struct wbdev_ctx *ctx, struct mm_struct *mm,
			  struct wbdev_clone **clones, u64 n)
{
	u64 i;

	mmap_write_lock(mm);
	mutex_lock(&ctx->lock);
	for (i = 0; i < n; i++) {
		if (list_empty(&clones[i]->node))
			continue;
		list_del_init(&clones[i]->node);
		clones[i]->claimed = false;
		wbdev_clone_put(clones[i]);
	}
	mutex_unlock(&ctx->lock);
	mmap_write_unlock(mm);
}

/*
 * In a fork child: take the copies made from the inherited context.
 * User memory is only touched with the mmap lock released: a fault on
 * the ranges buffer would wait for that lock.
 */
static long wbdev_ioc_fork_claim(struct wbdev_ctx *ctx, void __user *uarg)
{
	struct mm_struct *mm = current->mm;
	struct wbdev_clone **clones = NULL;
	struct wbdev_range *kr = NULL;
	struct wbdev_fork_claim a;
	struct vm_area_struct *vma;
	struct wbdev_ctx *old;
	struct file *f;
	u64 n = 0, i = 0;
	long ret = 0;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.pad || a.fd < 0)
		return a.pad ? -EINVAL : -EBADF;
	f = fget(a.fd);
	if (!f)
		return -EBADF;
	if (f->f_op != &wbdev_fops || f->private_data == ctx) {
		fput(f);
		return -EINVAL;
	}
	old = f->private_data;
	if (mmap_write_lock_killable(mm)) {
		fput(f);
		return -EINTR;
	}
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma)
			n += wbdev_claimable(vma, old, mm);
	}
	if (n > a.max) {
		ret = -ENOSPC;		/* a.count tells how many are needed */
		goto unlock;
	}
	if (n) {
		kr = kvmalloc_array(n, sizeof(*kr), GFP_KERNEL);
		clones = kvmalloc_array(n, sizeof(*clones), GFP_KERNEL);
		if (!kr || !clones) {
			ret = -ENOMEM;
			goto unlock;
		}
	}
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			struct wbdev_clone *clone = vma->vm_private_data;

			if (!wbdev_claimable(vma, old, mm))
				continue;
			kr[i].start = vma->vm_start;
			kr[i].len = vma->vm_end - vma->vm_start;
			clones[i++] = clone;
			clone->claimed = true;
			/*
			 * One reference for the pending list, one for
			 * clones[]: once the mmap lock is dropped another
			 * thread may map the copy and unmap the stub.
			 */
			kref_get(&clone->ref);
			kref_get(&clone->ref);
			mutex_lock(&ctx->lock);
			list_add_tail(&clone->node, &ctx->pending);
			mutex_unlock(&ctx->lock);
		}
	}
unlock:
	mmap_write_unlock(mm);
	fput(f);
	if (!ret && n && copy_to_user(u64_to_user_ptr(a.ranges), kr,
				      n * sizeof(*kr)))
		ret = -EFAULT;
	a.count = ret && ret != -ENOSPC ? 0 : n;
	if (copy_to_user(uarg, &a, sizeof(a)) && !ret)
		ret = -EFAULT;
	/* the caller cannot know what it claimed: nothing is claimed */
	if (ret == -EFAULT && i)
		wbdev_unclaim(ctx, mm, clones, i);
	while (i)
		wbdev_clone_put(clones[--i]);
	kvfree(kr);
	kvfree(clones);
	return ret;
}

static long wbdev_ioctl(struct file *file, unsigned int cmd,
			unsigned long arg)
{
	struct wbdev_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;

	if (current->mm != ctx->mm)
		return -EPERM;
	switch (cmd) {
	case WBDEV_IOC_PROTECT:
		return wbdev_ioc_protect(ctx, uarg);
	case WBDEV_IOC_COLLECT:
		return wbdev_ioc_collect(ctx, uarg);
	case WBDEV_IOC_INFO:
		return wbdev_ioc_info(ctx, uarg);
	case WBDEV_IOC_DISCARD:
		return wbdev_ioc_discard(ctx, uarg);
	case WBDEV_IOC_SET_FORK_MODE:
		if (arg != WBDEV_FORK_STUB && arg != WBDEV_FORK_COPY)
			return -EINVAL;
		WRITE_ONCE(ctx->fork_mode, arg);
		return 0;
	case WBDEV_IOC_FORK_CLAIM:
		return wbdev_ioc_fork_claim(ctx, uarg);
	case WBDEV_IOC_UNPROTECT:
		return wbdev_ioc_unprotect(ctx, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations wbdev_fops = {
	.owner = THIS_MODULE,
	.open = wbdev_open,
	.release = wbdev_release,
	.mmap = wbdev_mmap,
	.read = wbdev_read,
	.write = wbdev_write,
	.poll = wbdev_poll,
	.unlocked_ioctl = wbdev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice wbdev_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "wbdev",
	.fops = &wbdev_fops,
	.mode = 0666,
};

/*
 * Our shmem files live on a private tmpfs mounted huge=never: a huge
 * folio could be mapped writable by one PMD after a single page_mkwrite
 * (shmem_enabled=always, or advise with MADV_HUGEPAGE).
 */
static int __init wbdev_shm_init(void)
{
	struct file_system_type *type = get_fs_type("tmpfs");
	char opts[] = "huge=never";	/* parsed in place: writable */

	if (!type)
		return -ENODEV;
	wbdev_mnt = vfs_kern_mount(type, SB_KERNMOUNT, type->name, opts);
	module_put(type->owner);	/* put_filesystem() is not exported */
	return PTR_ERR_OR_ZERO(wbdev_mnt);
}

static int __init wbdev_init(void)
{
	int ret = wbdev_shm_init();

	if (ret)
		return ret;
	ret = misc_register(&wbdev_misc);
	if (ret)
		kern_unmount(wbdev_mnt);
	return ret;
}

/* Every shmem file of ours holds a module reference: all are gone. */
static void __exit wbdev_exit(void)
{
	misc_deregister(&wbdev_misc);
	kern_unmount(wbdev_mnt);
}

module_init(wbdev_init);
module_exit(wbdev_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Write-barrier device for garbage collectors");
MODULE_AUTHOR("wbdev developers");
MODULE_VERSION("2");
