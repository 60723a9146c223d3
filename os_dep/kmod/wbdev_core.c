// SPDX-License-Identifier: GPL-2.0
/*
 * wbdev_core.c - write-barrier device for garbage collectors (/dev/wbdev).
 *
 * Each mmap of the device is backed by its own shmem file (swappable,
 * charged to the caller's memory cgroup).  Our vm_ops wrap shmem's fault
 * and add page_mkwrite, which records the first write to a write-protected
 * page in a per-mapping dirty bitmap; page-table walks over runs of pages
 * (wp_shared_mapping_range) or folio_mkclean() for a page on its own
 * write-protect pages again (wbdev_log.c).  The user-visible semantics are documented in
 * include/uapi/linux/wbdev.h (os_dep/include/linux/wbdev.h) and wbdev(4).
 *
 * Locking order: mmap_lock -> ctx->lock -> folio lock -> area->lock.
 * area->lock (a spinlock) guards the bitmap and ndirty of one area; a bit
 * is set only with the page's folio locked (page_mkwrite), and cleared for
 * re-protection only under the same folio lock, either after
 * folio_mkclean() or before a walk that write-protects the page (a
 * page_mkwrite in between sets the bit again), so a write can never slip
 * between "reported" and "protected again".
 * WBDEV_IOC_UNPROTECT takes write faults holding only the mmap lock for
 * reading, as a fault of the process would.
 *
 * This file: the device, mmap and the VMAs of a context; see wbdev_int.h
 * for the other parts.
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

#include "wbdev_int.h"

/* shmem's vm_ops, whose fault and map_pages we call. */
static const struct vm_operations_struct *wbdev_shmem_vm_ops;
static const struct file_operations wbdev_shm_fops;
/* A private tmpfs mounted huge=never: our files get no huge folios. */
static struct vfsmount *wbdev_mnt __ro_after_init;

static void wbdev_ctx_free(struct kref *ref)
{
	struct wbdev_ctx *ctx = container_of(ref, struct wbdev_ctx, ref);
	struct wbdev_ctx *root = ctx->root;

	if (root) {
		spin_lock(&root->family_lock);
		list_del(&ctx->family_node);
		spin_unlock(&root->family_lock);
		wbdev_ctx_put(root);
	}
	mmdrop(ctx->mm);
	kfree(ctx);
}

void wbdev_ctx_put(struct wbdev_ctx *ctx)
{
	kref_put(&ctx->ref, wbdev_ctx_free);
}

/* A new context for mm, in the family of root (NULL: a root). */
static struct wbdev_ctx *wbdev_ctx_new(struct mm_struct *mm,
				       struct wbdev_ctx *root)
{
	struct wbdev_ctx *ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);

	if (!ctx)
		return NULL;
	kref_init(&ctx->ref);
	mutex_init(&ctx->lock);
	INIT_LIST_HEAD(&ctx->areas);
	INIT_LIST_HEAD(&ctx->pending);
	INIT_LIST_HEAD(&ctx->family);
	INIT_LIST_HEAD(&ctx->family_node);
	spin_lock_init(&ctx->family_lock);
	mutex_init(&ctx->settle_lock);
	init_waitqueue_head(&ctx->wq);
	ctx->fork_mode = WBDEV_FORK_AUTO;
	ctx->mm = mm;
	mmgrab(mm);
	if (root) {
		kref_get(&root->ref);
		ctx->root = root;
		ctx->fork_mode = READ_ONCE(root->fork_mode);
	}
	return ctx;
}

/**
 * wbdev_family_ctx() - the context of an address space in a file's family
 * @ctx: a context of the family (its root or a member)
 * @mm: the address space
 * @create: make one if there is none
 *
 * Returns a referenced context, or NULL if there is none (or no memory).
 */
struct wbdev_ctx *wbdev_family_ctx(struct wbdev_ctx *ctx,
				   struct mm_struct *mm, bool create)
{
	struct wbdev_ctx *root = ctx->root ?: ctx, *pos, *new = NULL;

	if (root->mm == mm) {
		kref_get(&root->ref);
		return root;
	}
	for (;;) {
		spin_lock(&root->family_lock);
		list_for_each_entry(pos, &root->family, family_node) {
			if (pos->mm == mm && kref_get_unless_zero(&pos->ref)) {
				spin_unlock(&root->family_lock);
				if (new)
					wbdev_ctx_put(new);
				return pos;
			}
		}
		if (new) {
			list_add(&new->family_node, &root->family);
			spin_unlock(&root->family_lock);
			return new;
		}
		spin_unlock(&root->family_lock);
		if (!create)
			return NULL;
		new = wbdev_ctx_new(mm, root);
		if (!new)
			return NULL;
	}
}

/**
 * wbdev_file_ctx() - the context of the calling process for a wbdev file
 * @file: an open /dev/wbdev (or a file made by wbdev_settle())
 *
 * The opener's context, or the one fork made for this address space (a
 * fork child's copies are mapped first, see wbdev_settle()).  Returns a
 * referenced context or ERR_PTR(-EPERM).
 */
struct wbdev_ctx *wbdev_file_ctx(struct file *file)
{
	struct wbdev_ctx *ctx;

	if (!current->mm)
		return ERR_PTR(-EPERM);
	ctx = wbdev_family_ctx(file->private_data, current->mm, false);
	if (!ctx)
		return ERR_PTR(-EPERM);
	if (READ_ONCE(ctx->unsettled))
		wbdev_settle(ctx);
	return ctx;
}

/* ---- VMAs ---- */

static vm_fault_t wbdev_fault(struct vm_fault *vmf)
{
	vm_fault_t ret = wbdev_shmem_vm_ops->fault(vmf);

	if (!(ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) &&
	    vmf->page)
		wbdev_note_folio(vmf->vma->vm_private_data,
				 page_folio(vmf->page));
	return ret;
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
struct file *wbdev_shm_create(pgoff_t npages, unsigned long flags)
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

static void wbdev_vm_open(struct vm_area_struct *vma)
{
	struct wbdev_area *area = vma->vm_private_data;
	struct wbdev_clone *clone;
	unsigned long prot;
	int mode;

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
	mode = READ_ONCE(area->ctx->fork_mode);
	vma->vm_ops = &wbdev_stub_vm_ops;
	vma->vm_private_data = NULL;
	prot = (vma->vm_flags & VM_READ ? PROT_READ : 0) |
	       (vma->vm_flags & VM_WRITE ? PROT_WRITE : 0) |
	       (vma->vm_flags & VM_EXEC ? PROT_EXEC : 0);
	clone = mode == WBDEV_FORK_STUB ? NULL : wbdev_fork_copy(vma, area);
	if (clone && mode == WBDEV_FORK_AUTO) {
		/* the child maps it at its first access (wbdev_settle) */
		clone->dst = wbdev_family_ctx(area->ctx, vma->vm_mm, true);
		if (clone->dst) {
			clone->prot = prot;
			WRITE_ONCE(clone->dst->unsettled, true);
		}
	}
	/*
	 * A stub never maps a page (its fault only raises SIGBUS or maps the
	 * copy elsewhere first); one that will map its copy keeps VM_WRITE
	 * so that the child's first write reaches the fault handler.
	 */
	if (!clone || !clone->dst)
		wbdev_vma_deny_write(vma);
	vma->vm_private_data = clone;
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

const struct vm_operations_struct wbdev_vm_ops = {
	.open = wbdev_vm_open,
	.close = wbdev_vm_close,
	.mremap = wbdev_vm_mremap,
	.fault = wbdev_fault,
	.map_pages = wbdev_map_pages,
	.page_mkwrite = wbdev_page_mkwrite,
	.name = wbdev_vm_name,
};

/* ---- file operations ---- */

static int wbdev_open(struct inode *inode, struct file *file)
{
	struct wbdev_ctx *ctx;

	if (!current->mm)
		return -EPERM;
	ctx = wbdev_ctx_new(current->mm, NULL);
	if (!ctx)
		return -ENOMEM;
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

static int wbdev_mmap_ctx(struct wbdev_ctx *ctx, struct vm_area_struct *vma)
{
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
	wbdev_window_init(area);
	if (area->ndirty) {
		/* a fork copy: its bits may be anywhere */
		area->dfirst = 0;
		area->dlast = npages - 1;
	}
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

/*
 * mmap in the caller's context (a fork child's once fork made one, see
 * wbdev_file_ctx(); its copies are not mapped here: the mmap lock is
 * held).
 */
static int wbdev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct wbdev_ctx *ctx;
	int ret;

	if (!current->mm)
		return -EPERM;
	ctx = wbdev_family_ctx(file->private_data, current->mm, false);
	if (!ctx)
		return -EPERM;
	ret = wbdev_mmap_ctx(ctx, vma);
	wbdev_ctx_put(ctx);
	return ret;
}

const struct file_operations wbdev_fops = {
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

