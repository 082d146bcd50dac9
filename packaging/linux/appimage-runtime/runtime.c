/* Deskhand's AppImage type-2 runtime: the ELF at the head of Deskhand-<version>-x86_64.AppImage.
 *
 * Written for this project from the AppImage specification (packaging/README.md): the ELF
 * carries 'A','I',2 at offset 8 (set by build.sh) and the squashfs image of the AppDir follows
 * it at the ELF's size, e_shoff + e_shnum * e_shentsize. By default the image is mounted with
 * FUSE (libsquashfuse's low-level driver, served by a child process) on a private mount point
 * and AppRun is exec'd in this process; the child unmounts when the last holder of a keep-alive
 * pipe (the app and its children) is gone. Without FUSE, or with --appimage-extract-and-run or
 * APPIMAGE_EXTRACT_AND_RUN=1, the image is extracted (extract.c) into a cache folder keyed by a
 * hash of the image, $XDG_CACHE_HOME/<app>/appimage/<hash>, reused by the next start; with
 * APPIMAGE_EXTRACT_NO_CACHE=1 into a private temporary folder removed when AppRun exits.
 * AppRun gets APPIMAGE, APPDIR, ARGV0 and OWD as the specification says.
 */
#define _GNU_SOURCE
#include <ll.h>  /* first: its config.h sets _POSIX_C_SOURCE, which features.h then widens */

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "extract.h"
#include "cache.h"

#ifndef APP_NAME
#define APP_NAME "deskhand"
#endif

/* The update-information and signature sections the specification reserves (left empty). */
__attribute__((section(".upd_info"), used)) static char upd_info[1024];
__attribute__((section(".sha256_sig"), used)) static char sha256_sig[1024];
__attribute__((section(".sig_key"), used)) static char sig_key[8192];

static char self[PATH_MAX];

static int die(const char *what) {
    fprintf(stderr, "appimage: %s: %s\n", what, strerror(errno));
    return 127;
}

/* The image starts where the ELF ends: after its section header table. */
static size_t elf_size(const char *path) {
    Elf64_Ehdr h;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : pread(fd, &h, sizeof h, 0);
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof h || memcmp(h.e_ident, ELFMAG, SELFMAG) != 0
        || h.e_ident[EI_CLASS] != ELFCLASS64)
        return 0;
    return h.e_shoff + (size_t)h.e_shnum * h.e_shentsize;
}

static void set_env(const char *appdir, const char *argv0) {
    char owd[PATH_MAX];
    setenv("APPIMAGE", self, 1);
    setenv("APPDIR", appdir, 1);
    setenv("ARGV0", argv0, 1);
    if (getcwd(owd, sizeof owd))
        setenv("OWD", owd, 1);
}

/* argv[0] is the name the user ran; args are what AppRun gets after it. */
static char **apprun_argv(const char *appdir, char *argv0, int argc, char **args) {
    char **out = calloc((size_t)argc + 2, sizeof *out);
    if (!out || asprintf(&out[0], "%s/AppRun", appdir) < 0)
        exit(die("memory"));
    memcpy(out + 1, args, (size_t)argc * sizeof *out);
    set_env(appdir, argv0);
    return out;
}

static int exec_apprun(const char *appdir, char *argv0, int argc, char **args) {
    char **av = apprun_argv(appdir, argv0, argc, args);
    execv(av[0], av);
    return die(av[0]);
}

/* --- extract and run ------------------------------------------------------------------- */

static pid_t child;

static void forward(int sig) {
    if (child > 0)
        kill(child, sig);
}

/* Runs AppRun from a private folder as a child (signals passed on), then removes the folder. */
static int run_and_remove(const char *dir, char *argv0, int argc, char **args) {
    char **av = apprun_argv(dir, argv0, argc, args);
    struct sigaction sa = {.sa_handler = forward};
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, NULL);
    int status = 127;
    if ((child = fork()) == 0) {
        execv(av[0], av);
        _exit(die(av[0]));
    }
    while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    remove_tree(dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int extract_and_run(size_t offset, char *argv0, int argc, char **args) {
    const char *nocache = getenv("APPIMAGE_EXTRACT_NO_CACHE");
    if (!(nocache && strcmp(nocache, "1") == 0)) {
        char appdir[PATH_MAX];
        if (cached_extraction(self, offset, APP_NAME, appdir, sizeof appdir) == 0)
            return exec_apprun(appdir, argv0, argc, args);
        fprintf(stderr, "appimage: no cache folder: extracting to a temporary one\n");
    }
    char dir[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/.%s-run-XXXXXX", tmp && *tmp ? tmp : "/tmp", APP_NAME);
    if (!mkdtemp(dir))
        return die(dir);
    if (extract_image(self, offset, dir) != 0) {
        remove_tree(dir);
        return 127;
    }
    return run_and_remove(dir, argv0, argc, args);
}

/* --- FUSE ----------------------------------------------------------------------------- */

/* Serves the mounted image until the keep-alive pipe closes (every holder exited). */
static void serve(struct fuse_session *se, int keepalive) {
    struct fuse_buf buf = {0};
    struct pollfd p[2] = {{fuse_session_fd(se), POLLIN, 0}, {keepalive, POLLIN, 0}};
    while (!fuse_session_exited(se)) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            break;
        int r = fuse_session_receive_buf(se, &buf);
        if (r == -EINTR)
            continue;
        if (r <= 0)
            break;
        fuse_session_process_buf(se, &buf);
    }
    free(buf.mem);
}

static void fuse_child(const char *mountpoint, size_t offset, int ready, int keepalive) {
    struct fuse_lowlevel_ops ops = {
        .getattr = sqfs_ll_op_getattr, .opendir = sqfs_ll_op_opendir,
        .releasedir = sqfs_ll_op_releasedir, .readdir = sqfs_ll_op_readdir,
        .lookup = sqfs_ll_op_lookup, .open = sqfs_ll_op_open, .create = sqfs_ll_op_create,
        .release = sqfs_ll_op_release, .read = sqfs_ll_op_read,
        .readlink = sqfs_ll_op_readlink, .listxattr = sqfs_ll_op_listxattr,
        .getxattr = sqfs_ll_op_getxattr, .forget = sqfs_ll_op_forget, .statfs = stfs_ll_op_statfs,
    };
    char *opts[] = {"appimage", "-o", "ro,nosuid,nodev", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, opts);
    sqfs_ll_chan ch;
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    sqfs_ll *ll = sqfs_ll_open(self, offset);
    if (!ll || sqfs_ll_mount(&ch, mountpoint, &args, &ops, sizeof ops, ll) != SQFS_OK)
        _exit(1);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    if (chdir("/") != 0 || write(ready, "y", 1) != 1)
        _exit(1);
    close(ready);
    serve(ch.session, keepalive);
    sqfs_ll_unmount(&ch, mountpoint);
    rmdir(mountpoint);
    _exit(0);
}

/* Mounts the image at a new private mount point; 0 when mounted, -1 (said why) when not. */
static int mount_image(size_t offset, char *mountpoint, size_t size) {
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        fprintf(stderr, "appimage: FUSE is not available (no usable /dev/fuse): extracting instead\n");
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(mountpoint, size, "%s/.mount_%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", APP_NAME);
    int ready[2], keep[2];
    if (!mkdtemp(mountpoint) || pipe2(ready, O_CLOEXEC) != 0 || pipe(keep) != 0)
        return die("mount point"), -1;
    /* Forked twice, so the server is not a child of the app (which would have to reap it). */
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        close(keep[1]);
        setsid();  /* the terminal's Ctrl-C is for the app; the server leaves when it has gone */
        if (fork() == 0)
            fuse_child(mountpoint, offset, ready[1], keep[0]);
        _exit(0);
    }
    close(ready[1]);
    close(keep[0]);  /* keep[1] stays open across exec: the app holds the mount */
    if (pid > 0)
        waitpid(pid, NULL, 0);
    char ok = 0;
    if (pid > 0 && read(ready[0], &ok, 1) == 1 && ok == 'y') {
        close(ready[0]);
        return 0;
    }
    close(ready[0]);
    close(keep[1]);
    rmdir(mountpoint);
    fprintf(stderr, "appimage: cannot mount the image with FUSE: extracting instead\n");
    return -1;
}

/* --- main ----------------------------------------------------------------------------- */

static int extract_here(size_t offset) {
    struct stat st;
    if (lstat("squashfs-root", &st) == 0) {
        fprintf(stderr, "appimage: ./squashfs-root exists: remove it first\n");
        return 1;
    }
    if (extract_image(self, offset, "squashfs-root") != 0) {
        remove_tree("squashfs-root");
        return 1;
    }
    return chmod("squashfs-root", 0755) != 0;
}

int main(int argc, char **argv) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return die("/proc/self/exe");
    self[n] = '\0';
    size_t offset = elf_size(self);
    if (offset == 0) {
        fprintf(stderr, "appimage: %s is not a 64-bit ELF\n", self);
        return 127;
    }
    const char *opt = argc > 1 ? argv[1] : "";
    const char *env = getenv("APPIMAGE_EXTRACT_AND_RUN");
    if (strcmp(opt, "--appimage-offset") == 0)
        return printf("%zu\n", offset) < 0;
    if (strcmp(opt, "--appimage-extract") == 0)
        return extract_here(offset);
    if (strcmp(opt, "--appimage-extract-and-run") == 0)
        return extract_and_run(offset, argv[0], argc - 2, argv + 2);
    if (strcmp(opt, "--appimage-help") == 0 || strncmp(opt, "--appimage-", 11) == 0) {
        fprintf(stderr, "AppImage runtime of %s: --appimage-offset, --appimage-extract "
                "(to ./squashfs-root), --appimage-extract-and-run [ARGS]; "
                "APPIMAGE_EXTRACT_AND_RUN=1, APPIMAGE_EXTRACT_NO_CACHE=1\n", APP_NAME);
        return strcmp(opt, "--appimage-help") == 0 ? 0 : 1;
    }
    if (env && strcmp(env, "1") == 0)
        return extract_and_run(offset, argv[0], argc - 1, argv + 1);
    char mountpoint[PATH_MAX];
    if (mount_image(offset, mountpoint, sizeof mountpoint) == 0)
        return exec_apprun(mountpoint, argv[0], argc - 1, argv + 1);
    return extract_and_run(offset, argv[0], argc - 1, argv + 1);
}
