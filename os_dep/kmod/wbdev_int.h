/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wbdev_int.h - what the parts of the wbdev module share: its objects,
 * their locking rules (wbdev_core.c) and the functions one part calls in
 * another.
 *
 *   wbdev_core.c   the device, mmap, the VMAs of a context, module init
 *   wbdev_log.c    the dirty log: recording, collecting, re-protecting
 *   wbdev_fork.c   fork: copies, stubs, WBDEV_IOC_FORK_CLAIM
 *   wbdev_ioctl.c  read, write, poll and the ioctls
 */
#ifndef WBDEV_INT_H
#define WBDEV_INT_H

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

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
	/*
	 * Contexts of one open file, one per address space: the opener's
	 * (root, file->private_data) lists those made for its fork
	 * children (and theirs) on family, under family_lock; each holds a
	 * reference on root.  A fork child's context is unsettled until its
	 * copies are mapped (wbdev_settle(), under settle_lock).
	 */
	struct wbdev_ctx *root;
	struct list_head family;
	struct list_head family_node;
	spinlock_t family_lock;		/* family (of a root) */
	struct mutex settle_lock;	/* unsettled, wbdev_settle() */
	bool unsettled;
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
	/* every set bit of dirty is in [dfirst, dlast]; empty: dfirst > dlast */
	pgoff_t dfirst, dlast;
	/*
	 * Sticky hints for choosing how to write-protect (wbdev_log.c):
	 * pages taken by read(2) or COLLECT without REPROTECT stay writable
	 * and unlogged (unlogged), a large folio was faulted in (large).
	 */
	bool unlogged;
	bool large;
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
	/* WBDEV_FORK_AUTO: the child's context, which maps it by itself */
	struct wbdev_ctx *dst;
	unsigned long prot;		/* PROT_* of the parent's VMA */
};

extern const struct vm_operations_struct wbdev_vm_ops;
extern const struct vm_operations_struct wbdev_stub_vm_ops;
extern const struct file_operations wbdev_fops;

static inline struct wbdev_area *wbdev_vma_area(struct wbdev_ctx *ctx,
						struct vm_area_struct *vma,
					 unsigned long addr)
{
	struct wbdev_area *area;

	if (!vma || addr < vma->vm_start || vma->vm_ops != &wbdev_vm_ops)
		return NULL;
	area = vma->vm_private_data;
	return area->ctx == ctx ? area : NULL;
}

static inline pgoff_t wbdev_vma_pgoff(struct vm_area_struct *vma,
				      unsigned long addr)
{
	return vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
}

/* wbdev_core.c */
struct file *wbdev_shm_create(pgoff_t npages, unsigned long flags);
void wbdev_ctx_put(struct wbdev_ctx *ctx);
struct wbdev_ctx *wbdev_family_ctx(struct wbdev_ctx *ctx,
				   struct mm_struct *mm, bool create);
struct wbdev_ctx *wbdev_file_ctx(struct file *file);

/* wbdev_log.c */
void wbdev_mark_range(struct wbdev_area *area, pgoff_t first, pgoff_t n);
void wbdev_mark(struct wbdev_area *area, pgoff_t pgoff);
void wbdev_mark_folio(struct wbdev_area *area, struct folio *folio);
void wbdev_unmark_range(struct wbdev_area *area, pgoff_t first, pgoff_t n);
void wbdev_window_init(struct wbdev_area *area);
void wbdev_note_folio(struct wbdev_area *area, struct folio *folio);
void wbdev_protect_pgoffs(struct wbdev_area *area, pgoff_t first,
			  pgoff_t last);
long wbdev_collect_user(struct wbdev_ctx *ctx, unsigned long start,
			unsigned long end, bool reprotect, u64 __user *ubuf,
			long max, unsigned long *next);
void wbdev_mark_unprotected(struct wbdev_area *area, pgoff_t pgoff);
bool wbdev_resident(struct wbdev_area *area, pgoff_t pgoff);

/* wbdev_fork.c */
void wbdev_clone_put(struct wbdev_clone *clone);
struct wbdev_clone *wbdev_fork_copy(struct vm_area_struct *vma,
				    struct wbdev_area *area);
struct wbdev_clone *wbdev_take_pending(struct wbdev_ctx *ctx,
				       struct vm_area_struct *vma);
long wbdev_ioc_fork_claim(struct wbdev_ctx *ctx, void __user *uarg);
void wbdev_settle(struct wbdev_ctx *ctx);

/* wbdev_ioctl.c */
ssize_t wbdev_write(struct file *file, const char __user *buf, size_t count,
		    loff_t *ppos);
ssize_t wbdev_read(struct file *file, char __user *buf, size_t count,
		   loff_t *ppos);
__poll_t wbdev_poll(struct file *file, poll_table *wait);
long wbdev_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

#endif /* WBDEV_INT_H */
