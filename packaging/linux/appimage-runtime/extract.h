/* Extracting the squashfs image of an AppImage into a folder, safely (extract.c). */
#ifndef DESKHAND_APPIMAGE_EXTRACT_H
#define DESKHAND_APPIMAGE_EXTRACT_H

#include <stddef.h>

/* Extracts the squashfs at `offset` in `image` into `target` (new, or an empty folder).
   Keeps file modes (less setuid/setgid), mtimes and symlinks. Refuses, before writing it,
   any entry whose name is ".", ".." or holds a '/', and any symlink whose target is absolute
   or climbs above `target`; every file is created with *at() calls relative to its parent's
   descriptor and O_NOFOLLOW, so nothing is ever written through a symlink.
   Returns 0, or -1 after a message on stderr (what was written stays: the caller removes it). */
int extract_image(const char *image, size_t offset, const char *target);

#endif
