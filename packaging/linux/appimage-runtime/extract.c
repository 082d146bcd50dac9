/* Safe extraction of an AppImage's squashfs (extract.h says what "safe" means here). */
#define _GNU_SOURCE
#include <squashfuse.h>  /* first: see runtime.c */

#include "extract.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 256
#define CHUNK (1 << 20)

typedef struct {
    sqfs fs;
    int dirs[MAX_DEPTH + 1];          /* descriptor of each open directory, root first */
    struct timespec mtimes[MAX_DEPTH + 1][2];
    mode_t modes[MAX_DEPTH + 1];      /* applied when the directory is finished */
    int depth;
    char *buf;
} extraction;

static int refuse(const char *path, const char *why) {
    fprintf(stderr, "appimage: refusing to extract '%s': %s\n", path, why);
    return -1;
}

static int failed(const char *path, const char *what) {
    fprintf(stderr, "appimage: extracting '%s': %s: %s\n", path, what, strerror(errno));
    return -1;
}

/* A name must be one plain path component: the image's names are not trusted. */
static int plain_name(const char *name, size_t size) {
    return size > 0 && strlen(name) == size && strchr(name, '/') == NULL
           && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Whether a symlink at `depth` components below the target stays inside it, read lexically. */
static int link_stays_inside(const char *link, int depth) {
    if (link[0] == '/')
        return 0;
    for (const char *p = link; *p;) {
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return 0;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p = *end ? end + 1 : end;
    }
    return 1;
}

static void set_times(struct timespec t[2], uint32_t mtime) {
    t[0].tv_sec = t[1].tv_sec = mtime;
    t[0].tv_nsec = t[1].tv_nsec = 0;
}

static int write_file(extraction *x, sqfs_inode *inode, const char *name, const char *path) {
    int fd = openat(x->dirs[x->depth], name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return failed(path, "create");
    for (sqfs_off_t off = 0; off < (sqfs_off_t)inode->xtra.reg.file_size;) {
        sqfs_off_t size = CHUNK;
        if (sqfs_read_range(&x->fs, inode, off, &size, x->buf) != SQFS_OK) {
            close(fd);
            return refuse(path, "the image's data cannot be read");
        }
        for (sqfs_off_t done = 0; done < size;) {
            ssize_t n = write(fd, x->buf + done, (size_t)(size - done));
            if (n < 0) {
                close(fd);
                return failed(path, "write");
            }
            done += n;
        }
        off += size;
    }
    struct timespec t[2];
    set_times(t, inode->base.mtime);
    int rc = fchmod(fd, inode->base.mode & 0777) | futimens(fd, t);
    if (close(fd) != 0 || rc != 0)
        return failed(path, "finish");
    return 0;
}

static int write_symlink(extraction *x, sqfs_inode *inode, const char *name, const char *path) {
    size_t size = inode->xtra.symlink_size + 1;
    char *link = malloc(size);
    if (!link || sqfs_readlink(&x->fs, inode, link, &size) != SQFS_OK) {
        free(link);
        return refuse(path, "unreadable symlink");
    }
    int rc = 0;
    if (!link_stays_inside(link, x->depth))
        rc = refuse(path, "its symlink points outside the image");
    else if (symlinkat(link, x->dirs[x->depth], name) != 0)
        rc = failed(path, "symlink");
    free(link);
    return rc;
}

static int enter_dir(extraction *x, sqfs_inode *inode, const char *name, const char *path) {
    if (x->depth >= MAX_DEPTH)
        return refuse(path, "too deep");
    int parent = x->dirs[x->depth];
    if (mkdirat(parent, name, 0700) != 0)
        return failed(path, "mkdir");
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return failed(path, "open");
    x->depth++;
    x->dirs[x->depth] = fd;
    x->modes[x->depth] = inode->base.mode & 0777;
    set_times(x->mtimes[x->depth], inode->base.mtime);
    return 0;
}

static int leave_dir(extraction *x) {
    int fd = x->dirs[x->depth];
    int rc = fchmod(fd, x->modes[x->depth]) | futimens(fd, x->mtimes[x->depth]);
    close(fd);
    x->depth--;
    return rc == 0 ? 0 : failed("(directory)", "chmod");
}

static int extract_entry(extraction *x, sqfs_traverse *trv) {
    sqfs_dir_entry *e = &trv->entry;
    const char *name = sqfs_dentry_name(e);
    if (!plain_name(name, sqfs_dentry_name_size(e)))
        return refuse(trv->path, "its name leaves its folder");
    sqfs_inode inode;
    if (sqfs_inode_get(&x->fs, &inode, sqfs_dentry_inode(e)) != SQFS_OK)
        return refuse(trv->path, "unreadable inode");
    switch (inode.base.inode_type) {
    case SQUASHFS_DIR_TYPE: case SQUASHFS_LDIR_TYPE:
        return enter_dir(x, &inode, name, trv->path);
    case SQUASHFS_REG_TYPE: case SQUASHFS_LREG_TYPE:
        return write_file(x, &inode, name, trv->path);
    case SQUASHFS_SYMLINK_TYPE: case SQUASHFS_LSYMLINK_TYPE:
        return write_symlink(x, &inode, name, trv->path);
    default:  /* devices, fifos, sockets: an AppDir has no use for them */
        fprintf(stderr, "appimage: skipping special file '%s'\n", trv->path);
        return 0;
    }
}

static int walk(extraction *x) {
    sqfs_traverse trv;
    sqfs_err err = SQFS_OK;
    if (sqfs_traverse_open(&trv, &x->fs, sqfs_inode_root(&x->fs)) != SQFS_OK)
        return refuse("/", "the image has no readable root");
    int rc = 0;
    while (rc == 0 && sqfs_traverse_next(&trv, &err))
        rc = trv.dir_end ? leave_dir(x) : extract_entry(x, &trv);
    if (rc == 0 && err != SQFS_OK)
        rc = refuse("/", "the image's directory tree is damaged");
    sqfs_traverse_close(&trv);
    return rc;
}

int extract_image(const char *image, size_t offset, const char *target) {
    extraction *x = calloc(1, sizeof *x);
    if (!x || !(x->buf = malloc(CHUNK)))
        return failed(target, "memory");
    x->dirs[0] = -1;
    int rc = -1;
    if (sqfs_open_image(&x->fs, image, offset) != SQFS_OK) {
        fprintf(stderr, "appimage: no squashfs image at offset %zu of %s\n", offset, image);
    } else {
        if (mkdir(target, 0700) != 0 && errno != EEXIST)  /* mkdtemp made private ones */
            failed(target, "mkdir");
        else if ((x->dirs[0] = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            failed(target, "open");
        else
            rc = walk(x);
        while (x->depth > 0)
            close(x->dirs[x->depth--]);
        if (x->dirs[0] >= 0)
            close(x->dirs[0]);
        sqfs_destroy(&x->fs);
    }
    free(x->buf);
    free(x);
    return rc;
}
