/* The extraction cache of the AppImage runtime, and removing a folder tree (cache.c). */
#ifndef DESKHAND_APPIMAGE_CACHE_H
#define DESKHAND_APPIMAGE_CACHE_H

#include <stddef.h>

/* Puts in `appdir` the folder holding the image extracted: $XDG_CACHE_HOME (or ~/.cache)
   /<app>/appimage/<hash of the image>, extracting it first when it is not there yet. A shared
   flock on <hash>.lock stays held by the process (and the app it execs), so entries of other
   versions are removed only when no running app uses them. 0, or -1 when there is no cache. */
int cached_extraction(const char *image, size_t offset, const char *app, char *appdir, size_t size);

/* rm -rf, without following symlinks or crossing mounts. */
void remove_tree(const char *path);

#endif
