// SPDX-License-Identifier: GPL-2.0
/*
 * wbdev_fork.c - fork of a process mapping /dev/wbdev: the child's VMAs
 * become stubs, optionally holding a copy of the parent's pages that the
 * child claims with WBDEV_IOC_FORK_CLAIM and maps over the stub.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mman.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/highmem.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "wbdev_int.h"

static void wbdev_clone_free(struct kref *ref)
{
	struct wbdev_clone *clone = container_of(ref, struct wbdev_clone, ref);

	fput(clone->shm);
	kvfree(clone->dirty);
	if (clone->dst)
		wbdev_ctx_put(clone->dst);
	kfree(clone);
}

void wbdev_clone_put(struct wbdev_clone *clone)
{
	kref_put(&clone->ref, wbdev_clone_free);
}

/*
 * Fork with WBDEV_FORK_COPY: copy the parent's pages of this VMA into a new
 * shmem file for the child.  Called from dup_mmap() with the parent's mmap
 * lock held for writing (and, from 6.4, every parent VMA write-locked), so
 * no parent fault can complete until fork() returns; write-protecting the
 * parent's pages first stops writes through existing PTEs too.  The copy
 * is therefore the memory at one instant.
 */
struct wbdev_clone *wbdev_fork_copy(struct vm_area_struct *vma,
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

/*
 * Claim the copy of a stub for ctx: put it on ctx's pending list, where
 * an mmap of ctx over the stub takes it (wbdev_take_pending()).  Takes
 * two references: the list's, and one for the caller, which must put it:
 * once the mmap lock is dropped another thread may map the copy and
 * unmap the stub.  Called with the mmap lock held.
 */
static void wbdev_pend(struct wbdev_ctx *ctx, struct wbdev_clone *clone)
{
	clone->claimed = true;
	kref_get(&clone->ref);
	kref_get(&clone->ref);
	mutex_lock(&ctx->lock);
	list_add_tail(&clone->node, &ctx->pending);
	mutex_unlock(&ctx->lock);
}

/*
 * A fault on a stub.  With WBDEV_FORK_AUTO the child's first access (its
 * own, or the kernel's on its behalf) maps the copies in place
 * (wbdev_settle()) and the access is retried; that needs the fault lock
 * dropped, so a fault that may not drop it, one of another process
 * (process_vm_writev, ptrace) and any later one get SIGBUS.
 */
static vm_fault_t wbdev_stub_fault(struct vm_fault *vmf)
{
	struct wbdev_clone *clone = vmf->vma->vm_private_data;
	struct wbdev_ctx *ctx;

	if (!clone || !clone->dst || vmf->vma->vm_mm != current->mm ||
	    !READ_ONCE(clone->dst->unsettled) ||
	    (vmf->flags & (FAULT_FLAG_TRIED | FAULT_FLAG_RETRY_NOWAIT)) ||
	    !(vmf->flags & FAULT_FLAG_ALLOW_RETRY))
		return VM_FAULT_SIGBUS;
	ctx = clone->dst;
	kref_get(&ctx->ref);
	wbdev_release_fault_lock(vmf);	/* vmf->vma may go from here on */
	wbdev_settle(ctx);
	wbdev_ctx_put(ctx);
	return VM_FAULT_RETRY;
}

/**
 * wbdev_settle() - map a fork child's copies in place of its stubs
 * @ctx: the child's context (WBDEV_FORK_AUTO), of the calling process
 *
 * Each stub holding a copy for @ctx is replaced, as the adapter's fork
 * protocol does from user space, by a MAP_FIXED mapping of a file of
 * @ctx that takes the copy (wbdev_mmap).  Called without the mmap lock,
 * from the first fault on a stub or the first call through the inherited
 * fd.  A copy that cannot be mapped (no memory, a fatal signal) leaves
 * its stub, which then faults with SIGBUS.
 */
void wbdev_settle(struct wbdev_ctx *ctx)
{
	struct mm_struct *mm = ctx->mm;
	unsigned long addr = 0;
	struct file *file;

	if (WARN_ON_ONCE(mm != current->mm))
		return;
	mutex_lock(&ctx->settle_lock);
	if (!ctx->unsettled)
		goto out;
	kref_get(&ctx->ref);	/* the file's, put by wbdev_release */
	file = anon_inode_getfile("[wbdev]", &wbdev_fops, ctx, O_RDWR);
	if (IS_ERR(file)) {
		wbdev_ctx_put(ctx);
		goto done;
	}
	for (;;) {
		struct wbdev_clone *clone = NULL;
		struct vm_area_struct *vma;
		unsigned long start = 0, len = 0, ret;

		if (mmap_read_lock_killable(mm))
			break;
		{
			VMA_ITERATOR(vmi, mm, addr);

			for_each_vma(vmi, vma) {
				struct wbdev_clone *c = vma->vm_private_data;

				if (vma->vm_ops == &wbdev_stub_vm_ops && c &&
				    c->dst == ctx && !c->claimed) {
					clone = c;
					start = vma->vm_start;
					len = vma->vm_end - vma->vm_start;
					break;
				}
			}
		}
		if (clone)
			wbdev_pend(ctx, clone);
		mmap_read_unlock(mm);
		if (!clone)
			break;
		ret = vm_mmap(file, start, len, clone->prot,
			      MAP_SHARED | MAP_FIXED, 0);
		mutex_lock(&ctx->lock);
		if (!list_empty(&clone->node)) {
			/* not taken by wbdev_mmap: the stub stays */
			list_del_init(&clone->node);
			wbdev_clone_put(clone);
		}
		mutex_unlock(&ctx->lock);
		wbdev_clone_put(clone);
		if (IS_ERR_VALUE(ret) && fatal_signal_pending(current))
			break;
		addr = start + len;
	}
	fput(file);
done:
	WRITE_ONCE(ctx->unsettled, false);
out:
	mutex_unlock(&ctx->settle_lock);
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
	struct wbdev_clone *clone = vma->vm_private_data;

	if (clone && clone->dst)
		return 0;	/* WBDEV_FORK_AUTO: see wbdev_vm_open() */
	return (newflags & VM_WRITE) ? -EACCES : 0;
}

static const char *wbdev_stub_name(struct vm_area_struct *vma)
{
	return "[wbdev-fork-stub]";
}

const struct vm_operations_struct wbdev_stub_vm_ops = {
	.open = wbdev_stub_open,
	.close = wbdev_stub_close,
	.may_split = wbdev_stub_may_split,
	.mremap = wbdev_stub_mremap,
	.mprotect = wbdev_stub_mprotect,
	.fault = wbdev_stub_fault,
	.page_mkwrite = wbdev_stub_fault,
	.name = wbdev_stub_name,
};

struct wbdev_clone *wbdev_take_pending(struct wbdev_ctx *ctx,
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
long wbdev_ioc_fork_claim(struct wbdev_ctx *ctx, void __user *uarg)
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
	if (f->f_op != &wbdev_fops || f->private_data == (ctx->root ?: ctx)) {
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
			wbdev_pend(ctx, clone);
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
