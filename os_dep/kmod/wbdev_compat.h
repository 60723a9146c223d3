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

#endif /* WBDEV_COMPAT_H */
