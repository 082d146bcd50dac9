/* The extraction cache: one folder per image content, reused across starts (cache.h). */
#define _GNU_SOURCE
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extract.h"

#define CHUNK (1 << 20)

/* A fast 64-bit hash of the image (not cryptographic: the cache is the user's own folder, and
   anything that can write there can change the cached app directly). */
static int image_hash(const char *image, size_t offset, uint64_t *out) {
    int fd = open(image, O_RDONLY | O_CLOEXEC);
    uint64_t *buf = malloc(CHUNK);
    uint64_t h = 0x6a09e667f3bcc908ULL, total = 0;
    ssize_t n = 0;
    if (fd < 0 || !buf || lseek(fd, (off_t)offset, SEEK_SET) < 0)
        n = -1;
    while (n >= 0 && (n = read(fd, buf, CHUNK)) > 0) {
        memset((char *)buf + n, 0, (size_t)(-n & 7));
        for (size_t i = 0; i < ((size_t)n + 7) / 8; i++) {
            h = (h ^ buf[i]) * 0x9e3779b97f4a7c15ULL;
            h ^= h >> 31;
        }
        total += (uint64_t)n;
    }
    free(buf);
    if (fd >= 0)
        close(fd);
    *out = (h ^ total) * 0xff51afd7ed558ccdULL;
    return n < 0 ? -1 : 0;
}

static int unlink_entry(const char *path, const struct stat *st, int type, struct FTW *f) {
    (void)st; (void)f;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int open_up(const char *path, const struct stat *st, int type, struct FTW *f) {
    (void)f;
    if (type == FTW_D && (st->st_mode & 0700) != 0700)
        chmod(path, st->st_mode | 0700);  /* read-only folders of the image block removal */
    return 0;
}

void remove_tree(const char *path) {
    nftw(path, open_up, 32, FTW_PHYS | FTW_MOUNT);
    nftw(path, unlink_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int mkdirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Removes the entries of other images that no running app holds (their lock is free). */
static void prune(const char *root, const char *keep) {
    DIR *d = opendir(root);
    struct dirent *e;
    char path[4200];
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != 21 || strcmp(e->d_name + 16, ".lock") != 0 || strncmp(e->d_name, keep, 16) == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            path[strlen(path) - 5] = '\0';
            remove_tree(path);
            strcat(path, ".lock");
            unlink(path);
        }
        if (fd >= 0)
            close(fd);
    }
    if (d)
        closedir(d);
}

static int extract_into_place(const char *image, size_t offset, const char *root,
                              const char *entry) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.new-XXXXXX", root);
    if (!mkdtemp(tmp))
        return -1;
    if (extract_image(image, offset, tmp) != 0) {
        remove_tree(tmp);
        exit(127);  /* a damaged or hostile image: extracting elsewhere would not help */
    }
    chmod(tmp, 0755);
    if (rename(tmp, entry) != 0) {  /* another start got there first: use theirs */
        int err = errno;
        remove_tree(tmp);
        if (err != EEXIST && err != ENOTEMPTY)
            return -1;
    }
    return 0;
}

int cached_extraction(const char *image, size_t offset, const char *app, char *appdir, size_t size) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char root[4096], lock[4200];
    if (xdg && xdg[0] == '/')
        snprintf(root, sizeof root, "%s/%s/appimage", xdg, app);
    else if (home && home[0] == '/')
        snprintf(root, sizeof root, "%s/.cache/%s/appimage", home, app);
    else
        return -1;
    uint64_t h;
    if (image_hash(image, offset, &h) != 0 || mkdirs(root) != 0)
        return -1;
    char key[17];
    snprintf(key, sizeof key, "%016" PRIx64, h);
    snprintf(appdir, size, "%s/%s", root, key);
    snprintf(lock, sizeof lock, "%s.lock", appdir);
    int fd = open(lock, O_RDWR | O_CREAT, 0600);  /* no O_CLOEXEC: the app holds it */
    if (fd < 0 || flock(fd, LOCK_SH) != 0)
        return -1;
    struct stat st;
    if (stat(appdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "appimage: extracting to %s (once per version)\n", appdir);
        if (extract_into_place(image, offset, root, appdir) != 0)
            return -1;
        prune(root, key);
    }
    return 0;
}
