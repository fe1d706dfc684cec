/*
 * test_io_fs.c - the file helpers: path joining, mkdir -p, bounded whole-file reads, and the
 * atomic outputs (files and folders): no temp entry is ever left behind, and an existing
 * output survives until its replacement is complete.
 */
#include "test_io_util.h"

#include <sys/stat.h>

TST(io_fs_path_join) {
    const char *cases[][3] = {{"a", "b", "a/b"}, {"a/", "b", "a/b"}, {"", "b", "b"}, {"a", "/abs", "/abs"},
                              {"/", "x", "/x"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = cq_path_join(cases[i][0], cases[i][1]);
        CHECKF(p && !strcmp(p, cases[i][2]), "join(%s, %s) = %s", cases[i][0], cases[i][1], p);
        free(p);
    }
    CHECK(cq_path_join(NULL, "x") == NULL);
}

TST(io_fs_mkdir_p_and_read_file) {
    char *dir = io_tmpdir();
    cq_err err = {0};
    char *deep = cq_path_join(dir, "a/b/c/");
    CHECK(cq_fs_mkdir_p(deep, &err) == CQ_OK && cq_fs_is_dir(deep));
    CHECK(cq_fs_mkdir_p(deep, &err) == CQ_OK); /* exists: fine */
    char *file = cq_path_join(dir, "a/f.txt");
    CHECK(cq_fs_write_file_atomic(file, "hello", 5, &err) == CQ_OK);
    char *under_file = cq_path_join(file, "x");
    CHECK(cq_fs_mkdir_p(under_file, &err) == CQ_E_IO);
    char *text = NULL;
    size_t n = 0;
    CHECK(cq_fs_read_file(file, 100, &text, &n, &err) == CQ_OK && n == 5 && !strcmp(text, "hello"));
    free(text);
    CHECK(cq_fs_read_file(file, 4, &text, &n, &err) == CQ_E_FORMAT && text == NULL && strstr(err.msg, "f.txt"));
    CHECK(cq_fs_read_file(deep, 100, &text, &n, &err) == CQ_E_IO);
    uint64_t size = 0;
    CHECK(cq_fs_file_size(file, &size, &err) == CQ_OK && size == 5);
    CHECK(cq_fs_exists(file) && !cq_fs_is_dir(file) && !cq_fs_exists("/no/such/cq/file"));
    CHECK(cq_fs_mkdir_p("", &err) == CQ_E_ARG);
    free(deep);
    free(file);
    free(under_file);
    io_rmtree(dir);
}

TST(io_fs_atomic_file_and_copy) {
    char *dir = io_tmpdir();
    cq_err err = {0};
    char *a = cq_path_join(dir, "a.bin"), *b = cq_path_join(dir, "b.bin");
    CHECK(cq_fs_write_file_atomic(a, "one", 3, &err) == CQ_OK);
    CHECK(cq_fs_write_file_atomic(a, "second", 6, &err) == CQ_OK);
    CHECK(cq_fs_copy_file(a, b, &err) == CQ_OK);
    IO_CHECK_SAME_FILE(a, b);
    CHECK(io_count_entries(dir) == 2);
    /* Output permissions follow the umask like any new file, not mkstemp's 0600. */
    struct stat st;
    mode_t mask = umask(022);
    umask(mask);
    CHECK(stat(a, &st) == 0 && (st.st_mode & 0777) == (0666 & ~mask));
    CHECK(cq_fs_copy_file("/no/such/cq/src", b, &err) == CQ_E_IO && strstr(err.msg, "/no/such/cq/src"));
    CHECK(cq_fs_write_file_atomic(dir, "x", 1, &err) == CQ_E_IO); /* a folder is not replaced */
    CHECK(io_count_entries(dir) == 2);
    free(a);
    free(b);
    io_rmtree(dir);
}

TST(io_fs_temp_folder_commit) {
    char *dir = io_tmpdir();
    cq_err err = {0};
    char *final = cq_path_join(dir, "out"), *tmp = NULL, *tmp2 = NULL;
    CHECK(cq_fs_temp_dir(final, &tmp, &err) == CQ_OK && cq_fs_is_dir(tmp));
    char *f = cq_path_join(tmp, "x.txt");
    CHECK(cq_fs_write_file_atomic(f, "v1", 2, &err) == CQ_OK);
    free(f);
    CHECK(cq_fs_commit_dir(tmp, final, false, &err) == CQ_OK && cq_fs_is_dir(final) && !cq_fs_exists(tmp));
    /* A second output: refused without overwrite, replaces with it. */
    CHECK(cq_fs_temp_dir(final, &tmp2, &err) == CQ_OK);
    f = cq_path_join(tmp2, "y.txt");
    CHECK(cq_fs_write_file_atomic(f, "v2", 2, &err) == CQ_OK);
    free(f);
    CHECK(cq_fs_commit_dir(tmp2, final, false, &err) == CQ_E_EXISTS && cq_fs_is_dir(tmp2));
    CHECK(cq_fs_commit_dir(tmp2, final, true, &err) == CQ_OK);
    char *x = cq_path_join(final, "x.txt"), *y = cq_path_join(final, "y.txt");
    CHECK(!cq_fs_exists(x) && cq_fs_exists(y));
    CHECK(io_count_entries(dir) == 1); /* no temp or old folders left */
    CHECK(cq_fs_remove_tree(final, &err) == CQ_OK && !cq_fs_exists(final));
    CHECK(cq_fs_remove_tree(final, &err) == CQ_OK); /* missing: fine */
    free(x);
    free(y);
    free(tmp);
    free(tmp2);
    free(final);
    io_rmtree(dir);
}
