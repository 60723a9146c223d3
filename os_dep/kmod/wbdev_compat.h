/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wbdev_compat.h - the only place where kernel versions differ
 * (Debian 6.1 and 6.12 are the tested ones).
 */
#ifndef WBDEV_COMPAT_H
#define WBDEV_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

/* vm_flags became read-only with accessors in 6.3. */
static inline void wbdev_vm_flags_set(struct vm_area_struct *vma,
				      unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

static inline void wbdev_vm_flags_clear(struct vm_area_struct *vma,
					unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

/* filemap_lock_folio returns an ERR_PTR instead of NULL since 6.3. */
static inline struct folio *wbdev_lock_folio(struct address_space *mapping,
					     pgoff_t index)
{
	struct folio *folio = filemap_lock_folio(mapping, index);

	if (IS_ERR(folio))
		return NULL;
	return folio;
}

/*
 * Take write permission away from a VMA that dup_mmap() has already
 * counted as a shared writable mapping.  From 6.7 that count follows
 * VM_MAYWRITE (vma_is_shared_maywrite), so drop it by hand to keep
 * i_mmap_writable balanced when the VMA is unmapped; before 6.7 it
 * follows VM_SHARED alone.
 */
static inline void wbdev_vma_deny_write(struct vm_area_struct *vma)
{
	wbdev_vm_flags_clear(vma, VM_WRITE | VM_MAYWRITE);
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	if (vma->vm_file)
		mapping_unmap_writable(vma->vm_file->f_mapping);
#endif
}

/*
 * Drop the lock a fault holds before returning VM_FAULT_RETRY: from 6.4 a
 * fault may hold only its VMA's lock (FAULT_FLAG_VMA_LOCK).
 */
static inline void wbdev_release_fault_lock(struct vm_fault *vmf)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	release_fault_lock(vmf);
#else
	mmap_read_unlock(vmf->vma->vm_mm);
#endif
}

/*
 * References a folio of a wbdev area has when nobody but the page cache,
 * the page tables, the caller (@held references) and the LRU code uses
 * it.  A folio off the LRU is in a per-CPU batch (from its first fault
 * until the batch is drained) or isolated (migration, reclaim), which
 * holds one reference; the flag is read before the count, so a folio
 * that changes state between the two only looks held.  Before 6.9
 * folio_mapcount() is not exported: a small folio's is page_mapcount(),
 * a large folio's is not known (-1: take it as held).
 */
static inline int wbdev_folio_quiet_refs(struct folio *folio, int held)
{
	int lru_ref = !folio_test_lru(folio);

	smp_rmb();	/* the flag before the count */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	return folio_nr_pages(folio) + folio_mapcount(folio) + held + lru_ref;
#else
	if (folio_test_large(folio))
		return -1;
	return 1 + page_mapcount(&folio->page) + held + lru_ref;
#endif
}

/**
 * wbdev_folio_maybe_gup() - may the kernel write to a folio without a fault?
 * @folio: a folio of a wbdev area
 * @held: references the caller holds on it
 *
 * A write through a get_user_pages() reference takes no fault once the
 * reference is taken.  Pins (FOLL_PIN: process_vm_writev, io_uring fixed
 * buffers, O_DIRECT and AIO from 6.5) are counted by the folio; plain
 * references (FOLL_GET: O_DIRECT and AIO before 6.5, /proc/PID/mem and
 * ptrace on every kernel) are not, so any reference beyond the quiet ones
 * counts as one.  Short-lived references (a per-CPU LRU batch just after
 * the first fault, migration) only make a page reported once more.
 */
static inline bool wbdev_folio_maybe_gup(struct folio *folio, int held)
{
	int quiet;

	if (folio_maybe_dma_pinned(folio))
		return true;
	quiet = wbdev_folio_quiet_refs(folio, held);
	return folio_ref_count(folio) > quiet;
}

#endif /* WBDEV_COMPAT_H */
