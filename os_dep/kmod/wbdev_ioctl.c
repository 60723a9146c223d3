// SPDX-License-Identifier: GPL-2.0
/*
 * wbdev_ioctl.c - read, write, poll and the ioctls of /dev/wbdev.
 */
#include <linux/file.h>
#include <linux/falloc.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "wbdev_int.h"

static ssize_t wbdev_write_ctx(struct wbdev_ctx *ctx, const char __user *buf,
			       size_t count)
{
	struct mm_struct *mm = current->mm;
	size_t n = count / sizeof(u64), done = 0;
	ssize_t err = 0;
	u64 *kbuf;

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
		struct wbdev_area *run = NULL;
		pgoff_t run_first = 0, run_last = 0;

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
			/* ascending neighbours are protected as one run */
			if (area == run && pgoff >= run_first &&
			    pgoff <= run_last + 1) {
				run_last = max(run_last, pgoff);
			} else {
				if (run)
					wbdev_protect_pgoffs(run, run_first,
							     run_last);
				run = area;
				run_first = pgoff;
				run_last = pgoff;
			}
			done++;
		}
		if (run)
			wbdev_protect_pgoffs(run, run_first, run_last);
		mmap_read_unlock(mm);
		if (fatal_signal_pending(current) && !err)
			err = -EINTR;
		cond_resched();
	}
	kfree(kbuf);
	return done ? done * sizeof(u64) : err;
}

ssize_t wbdev_write(struct file *file, const char __user *buf, size_t count,
		    loff_t *ppos)
{
	struct wbdev_ctx *ctx = wbdev_file_ctx(file);
	ssize_t ret;

	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	ret = wbdev_write_ctx(ctx, buf, count);
	wbdev_ctx_put(ctx);
	return ret;
}

ssize_t wbdev_read(struct file *file, char __user *buf, size_t count,
		   loff_t *ppos)
{
	struct wbdev_ctx *ctx;
	unsigned long next;
	long n;

	if (count % sizeof(u64) || count < sizeof(u64))
		return -EINVAL;
	ctx = wbdev_file_ctx(file);
	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	n = wbdev_collect_user(ctx, 0, ULONG_MAX, false, (u64 __user *)buf,
			       min_t(size_t, count / sizeof(u64), LONG_MAX / 8),
			       &next);
	wbdev_ctx_put(ctx);
	return n < 0 ? n : n * (ssize_t)sizeof(u64);
}

__poll_t wbdev_poll(struct file *file, poll_table *wait)
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
			    WBDEV_FEAT_FORK_COPY | WBDEV_FEAT_FORK_AUTO,
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

static long wbdev_ioctl_ctx(struct wbdev_ctx *ctx, unsigned int cmd,
			    unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

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
		if (arg != WBDEV_FORK_STUB && arg != WBDEV_FORK_COPY &&
		    arg != WBDEV_FORK_AUTO)
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

long wbdev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct wbdev_ctx *ctx = wbdev_file_ctx(file);
	long ret;

	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	ret = wbdev_ioctl_ctx(ctx, cmd, arg);
	wbdev_ctx_put(ctx);
	return ret;
}
