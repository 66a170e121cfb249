/* fiber-cli.c — the `fiber` command-line tool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   fiber pool-types
 *   fiber tasks
 *   fiber map [-t TYPE] [-j N] [--chunksize N] [--progress] -- CMD ARG… {}
 *   fiber map [-t TYPE] [-j N] [--chunksize N] [--progress] --task NAME
 *   fiber worker
 *   fiber bench [ARGS…]
 *
 * `fiber map` reads all of standard input first (the pool needs the whole
 * iterable, and the progress bar needs the total), validates it, and only
 * then starts the pool; results are consumed with fiber_pool_imap() so the
 * output streams in input order while later items still run.
 *
 * Exit status: 0 success, 1 some items failed (or the pool failed),
 * 2 bad usage or bad input, 128 + N when stopped by signal N.
 */

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fiber.h>

#define EXIT_ITEMS_FAILED 1
#define EXIT_USAGE        2

#define MAX_JOBS          4096
#define MAX_LISTED_FAILURES 100

/* Workers re-execute this program and serve from fiber_init(); the
 * signal handlers below are installed after that, and exec resets them. */
static volatile sig_atomic_t stop_signal;

static void
on_stop_signal (int signum)
{
  stop_signal = signum;
}

static void
on_sigpipe (int signum)
{
  /* A handler rather than SIG_IGN: ignored signals survive exec, and the
   * commands we run must see the default SIGPIPE.  Writes then fail with
   * EPIPE, which ends the map cleanly. */
}

static void
install_signal_handlers (void)
{
  struct sigaction sa = { 0 };

  sa.sa_handler = on_stop_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);

  sa.sa_handler = on_sigpipe;
  sigaction (SIGPIPE, &sa, NULL);
}

/* ------------------------------------------------------------------ */
/* Progress bar                                                        */
/* ------------------------------------------------------------------ */

typedef struct
{
  gboolean enabled;
  gboolean tty;            /* redraw in place; else one line per update */
  guint    total;
  gint64   start_usec;
  gint64   last_draw_usec;
  gboolean drawn;          /* a bar is on screen (tty mode) */
} Progress;

static guint
terminal_columns (void)
{
  struct winsize ws;

  if (ioctl (STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

static void
format_duration (GString *out,
                 double   seconds)
{
  guint64 s;

  if (seconds < 0 || seconds > 360000.0 * 24)
    {
      g_string_append (out, "--:--");
      return;
    }
  s = (guint64) (seconds + 0.5);
  if (s >= 3600)
    g_string_append_printf (out, "%" G_GUINT64_FORMAT ":%02u:%02u",
                            s / 3600, (guint) (s / 60 % 60), (guint) (s % 60));
  else
    g_string_append_printf (out, "%u:%02u", (guint) (s / 60), (guint) (s % 60));
}

static void
progress_clear (Progress *p)
{
  if (p->enabled && p->tty && p->drawn)
    {
      fputs ("\r\033[K", stderr);
      fflush (stderr);
      p->drawn = FALSE;
    }
}

static void
progress_draw (Progress *p,
               guint     done,
               gboolean  force)
{
  g_autoptr(GString) text = NULL;
  g_autoptr(GString) line = NULL;
  gint64 now;
  double elapsed, rate;
  guint columns, bar_width;

  if (!p->enabled)
    return;

  now = g_get_monotonic_time ();
  /* At most ~10 redraws a second on a terminal, one a second in a log. */
  if (!force &&
      now - p->last_draw_usec < (p->tty ? G_USEC_PER_SEC / 10 : G_USEC_PER_SEC))
    return;
  p->last_draw_usec = now;

  elapsed = (now - p->start_usec) / (double) G_USEC_PER_SEC;
  rate = elapsed > 0 ? done / elapsed : 0;

  text = g_string_new (NULL);
  g_string_append_printf (text, " %u/%u  ", done, p->total);
  if (rate >= 100)
    g_string_append_printf (text, "%.0f/s", rate);
  else
    g_string_append_printf (text, "%.1f/s", rate);
  g_string_append (text, "  ETA ");
  if (done >= p->total)
    format_duration (text, 0);
  else if (done == 0 || rate <= 0)
    g_string_append (text, "--:--");
  else
    format_duration (text, (p->total - done) / rate);
  g_string_append (text, "  elapsed ");
  format_duration (text, elapsed);

  columns = p->tty ? terminal_columns () : 80;
  bar_width = columns > text->len + 12 ? MIN (40, columns - text->len - 3) : 0;

  line = g_string_new (p->tty ? "\r" : "");
  if (bar_width > 0)
    {
      guint filled = p->total > 0 ? (guint) ((guint64) bar_width * done / p->total) : bar_width;

      g_string_append_c (line, '[');
      for (guint i = 0; i < bar_width; i++)
        g_string_append_c (line, i < filled ? '#' : (i == filled ? '>' : '.'));
      g_string_append_c (line, ']');
    }
  g_string_append (line, text->str);
  g_string_append (line, p->tty ? "\033[K" : "\n");

  fputs (line->str, stderr);
  fflush (stderr);
  p->drawn = p->tty;
}

static void
progress_finish (Progress *p,
                 guint     done)
{
  if (!p->enabled)
    return;
  progress_draw (p, done, TRUE);
  if (p->tty)
    {
      fputc ('\n', stderr);
      fflush (stderr);
      p->drawn = FALSE;
    }
}

/* ------------------------------------------------------------------ */
/* Input                                                               */
/* ------------------------------------------------------------------ */

typedef struct
{
  char  *text;    /* the line without its terminator */
  guint  line_no; /* 1-based line number in the input */
} InputLine;

static void
input_line_clear (gpointer data)
{
  InputLine *line = data;
  g_free (line->text);
}

/* Reads every line of @stream.  Lines must be UTF-8 without NUL bytes:
 * they become GVariant strings. */
static GArray *
read_lines (FILE     *stream,
            gboolean  skip_blank,
            GError  **error)
{
  g_autoptr(GArray) lines = g_array_new (FALSE, FALSE, sizeof (InputLine));
  g_autofree char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  guint line_no = 0;

  g_array_set_clear_func (lines, input_line_clear);

  while ((len = getline (&buf, &cap, stream)) >= 0)
    {
      InputLine line;

      line_no++;
      if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
      if (len > 0 && buf[len - 1] == '\r')
        buf[--len] = '\0';
      if ((size_t) len != strlen (buf))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "line %u contains a NUL byte", line_no);
          return NULL;
        }
      if (!g_utf8_validate (buf, len, NULL))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "line %u is not valid UTF-8", line_no);
          return NULL;
        }
      if (skip_blank && g_strstrip (buf)[0] == '\0')
        continue;

      line.text = g_strdup (buf);
      line.line_no = line_no;
      g_array_append_val (lines, line);
    }

  if (ferror (stream))
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "cannot read standard input: %s", g_strerror (saved_errno));
      return NULL;
    }

  return g_steal_pointer (&lines);
}

static gboolean
has_placeholder (char **command)
{
  for (guint i = 0; command[i] != NULL; i++)
    if (strstr (command[i], "{}") != NULL)
      return TRUE;
  return FALSE;
}

/* One `(as)` argument tuple of fiber.subprocess per line: every `{}` in
 * the command is replaced by the line, or the line is appended. */
static GVariant *
build_command_iterable (char   **command,
                        GArray  *lines)
{
  GVariantBuilder builder;
  gboolean placeholder = has_placeholder (command);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(as)"));
  for (guint i = 0; i < lines->len; i++)
    {
      const InputLine *line = &g_array_index (lines, InputLine, i);

      g_variant_builder_open (&builder, G_VARIANT_TYPE ("(as)"));
      g_variant_builder_open (&builder, G_VARIANT_TYPE ("as"));
      for (guint j = 0; command[j] != NULL; j++)
        {
          if (strstr (command[j], "{}") != NULL)
            {
              g_autoptr(GString) arg = g_string_new (command[j]);

              g_string_replace (arg, "{}", line->text, 0);
              g_variant_builder_add (&builder, "s", arg->str);
            }
          else
            g_variant_builder_add (&builder, "s", command[j]);
        }
      if (!placeholder)
        g_variant_builder_add (&builder, "s", line->text);
      g_variant_builder_close (&builder);
      g_variant_builder_close (&builder);
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

/* Parses one GVariant per line.  When all lines have the same type the
 * iterable is an array of that type, else an `av`. */
static GVariant *
build_task_iterable (GArray  *lines,
                     GError **error)
{
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  const GVariantType *common = NULL;

  for (guint i = 0; i < lines->len; i++)
    {
      const InputLine *line = &g_array_index (lines, InputLine, i);
      g_autoptr(GError) local_error = NULL;
      GVariant *value;

      value = g_variant_parse (NULL, line->text, NULL, NULL, &local_error);
      if (value == NULL)
        {
          g_autofree char *context = g_variant_parse_error_print_context (local_error, line->text);

          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "line %u is not a GVariant text: %s", line->line_no,
                       g_strchomp (context));
          return NULL;
        }
      g_ptr_array_add (values, g_variant_ref_sink (value));

      if (i == 0)
        common = g_variant_get_type (value);
      else if (common != NULL && !g_variant_type_equal (common, g_variant_get_type (value)))
        common = NULL;
    }

  if (common == NULL)
    {
      GVariantBuilder builder;

      g_variant_builder_init (&builder, G_VARIANT_TYPE ("av"));
      for (guint i = 0; i < values->len; i++)
        g_variant_builder_add (&builder, "v", values->pdata[i]);
      return g_variant_ref_sink (g_variant_builder_end (&builder));
    }

  return g_variant_ref_sink (g_variant_new_array (common,
                                                  (GVariant * const *) values->pdata,
                                                  values->len));
}

/* ------------------------------------------------------------------ */
/* fiber map                                                           */
/* ------------------------------------------------------------------ */

typedef struct
{
  guint  line_no;
  char  *text;
  char  *reason;
} Failure;

static void
failure_clear (gpointer data)
{
  Failure *f = data;
  g_free (f->text);
  g_free (f->reason);
}

typedef struct
{
  char      *pool_type;
  char      *config;
  char      *jobs_str;
  char      *chunksize_str;
  char      *task;
  char      *backend;
  gboolean   progress;
  gboolean   no_progress;
  char     **rest;
} MapOptions;

static void
map_options_clear (MapOptions *o)
{
  g_free (o->pool_type);
  g_free (o->config);
  g_free (o->jobs_str);
  g_free (o->chunksize_str);
  g_free (o->task);
  g_free (o->backend);
  g_strfreev (o->rest);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MapOptions, map_options_clear)

static gboolean
parse_uint_option (const char  *name,
                   const char  *value,
                   guint64      max,
                   guint       *out,
                   const char  *meaning,
                   GError     **error)
{
  guint64 v;

  if (value == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (value, 10, 0, max, &v, NULL))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "invalid value for %s: “%s” (expected %s)", name, value, meaning);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

/* Writes all of @data to @stream; FALSE on a write error (EPIPE…). */
static gboolean
write_all (FILE          *stream,
           gconstpointer  data,
           gsize          len)
{
  if (len == 0)
    return TRUE;
  return fwrite (data, 1, len, stream) == len;
}

static char *
describe_status (int status)
{
  if (status < 0)
    {
      const char *name = g_strsignal (-status);
      return g_strdup_printf ("killed by signal %d (%s)", -status, name);
    }
  return g_strdup_printf ("exit status %d", status);
}

static char *
shorten (const char *text)
{
  const glong max_chars = 60;

  if (g_utf8_strlen (text, -1) <= max_chars)
    return g_strdup (text);
  {
    g_autofree char *head = g_utf8_substring (text, 0, max_chars - 1);
    return g_strconcat (head, "…", NULL);
  }
}

typedef struct
{
  gboolean  command_mode;
  GArray   *lines;       /* InputLine, indexed like the items */
  GArray   *failures;    /* Failure */
  gboolean  output_broken;
} MapState;

static void
record_failure (MapState   *state,
                guint       index,
                const char *reason)
{
  const InputLine *line = &g_array_index (state->lines, InputLine, index);
  Failure f;

  f.line_no = line->line_no;
  f.text = g_strdup (line->text);
  f.reason = g_strdup (reason);
  g_array_append_val (state->failures, f);
}

static void
handle_item (MapState     *state,
             Progress     *progress,
             guint         index,
             GVariant     *value,
             const GError *item_error)
{
  const InputLine *line = &g_array_index (state->lines, InputLine, index);

  progress_clear (progress);

  if (item_error != NULL || value == NULL)
    {
      const char *message = item_error != NULL ? item_error->message : "no result";

      g_printerr ("fiber: line %u: %s\n", line->line_no, message);
      record_failure (state, index, message);
      return;
    }

  if (state->command_mode)
    {
      g_autoptr(GVariant) out = NULL;
      g_autoptr(GVariant) err = NULL;
      gconstpointer data;
      gsize len;
      gint32 status;

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE ("(iayay)")))
        {
          g_autofree char *reason =
            g_strdup_printf ("unexpected result of type %s from fiber.subprocess",
                             g_variant_get_type_string (value));
          g_printerr ("fiber: line %u: %s\n", line->line_no, reason);
          record_failure (state, index, reason);
          return;
        }
      g_variant_get (value, "(i@ay@ay)", &status, &out, &err);

      data = g_variant_get_fixed_array (out, &len, 1);
      if (!state->output_broken && !write_all (stdout, data, len))
        state->output_broken = TRUE;

      data = g_variant_get_fixed_array (err, &len, 1);
      if (len > 0)
        {
          fflush (stdout);
          write_all (stderr, data, len);
          fflush (stderr);
        }

      if (status != 0)
        {
          g_autofree char *reason = describe_status (status);
          record_failure (state, index, reason);
        }
    }
  else
    {
      g_autofree char *printed = g_variant_print (value, FALSE);

      if (!state->output_broken &&
          (!write_all (stdout, printed, strlen (printed)) || !write_all (stdout, "\n", 1)))
        state->output_broken = TRUE;
    }
}

static void
print_failure_summary (MapState *state,
                       guint     total)
{
  guint n = state->failures->len;

  g_printerr ("fiber: %u of %u line%s failed:\n", n, total, total == 1 ? "" : "s");
  for (guint i = 0; i < n && i < MAX_LISTED_FAILURES; i++)
    {
      const Failure *f = &g_array_index (state->failures, Failure, i);
      g_autofree char *text = shorten (f->text);

      g_printerr ("  line %u (“%s”): %s\n", f->line_no, text, f->reason);
    }
  if (n > MAX_LISTED_FAILURES)
    g_printerr ("  … and %u more\n", n - MAX_LISTED_FAILURES);
}

static void
stop_pool (FiberPool *pool,
           gboolean   graceful)
{
  g_autoptr(GError) error = NULL;

  if (graceful)
    fiber_pool_close (pool);
  else
    fiber_pool_terminate (pool);

  if (!fiber_pool_join (pool, 10000, &error))
    {
      fiber_pool_terminate (pool);
      g_clear_error (&error);
      if (!fiber_pool_join (pool, 5000, &error))
        g_printerr ("fiber: the pool did not stop: %s\n", error->message);
    }
}

/* The pool of `--backend NAME`: the remote pool type (unless -t names
 * another process pool type) whose workers are jobs of that backend, with
 * the backend's settings (slurm-*, kubernetes-*). */
static FiberPool *
pool_with_backend (MapOptions  *opts,
                   guint        jobs,
                   GError     **error)
{
  g_autoptr(JsonObject) config = json_object_new ();
  JsonObject *backend = json_object_new ();

  json_object_set_string_member (config, "pool_type",
                                 opts->pool_type != NULL ? opts->pool_type : "remote");
  json_object_set_int_member (config, "processes", jobs);
  json_object_set_string_member (backend, "name", opts->backend);
  json_object_set_object_member (config, "backend", backend);
  return fiber_pool_new_from_config (config, error);
}

/* The entry named @long_name, or if that is %NULL the one of @short_name. */
static const GOptionEntry *
find_option (const GOptionEntry *entries,
             const char         *long_name,
             char                short_name)
{
  for (guint i = 0; entries[i].long_name != NULL; i++)
    if (long_name != NULL ? g_str_equal (entries[i].long_name, long_name)
                          : entries[i].short_name == short_name)
      return &entries[i];
  return NULL;
}

/* GOption takes the value of a short option only as the next argument
 * (`-j 2`); `-j2`, as getopt and every other tool accept it, is an unknown
 * option.  Returns a copy of @argv with each `-XVALUE` of an option X that
 * takes a value split into `-X` `VALUE`.  Like the parse itself (strict
 * POSIX), this stops at `--` or at the first argument that is not an
 * option: what follows is the command's own. */
static GStrv
split_attached_values (const GOptionEntry *entries,
                       int                 argc,
                       char              **argv)
{
  g_autoptr(GStrvBuilder) out = g_strv_builder_new ();
  int i = 0;

  if (argc > 0)
    g_strv_builder_add (out, argv[i++]);
  for (; i < argc; i++)
    {
      const char *arg = argv[i];
      const GOptionEntry *entry = NULL;

      if (g_str_equal (arg, "--") || arg[0] != '-' || arg[1] == '\0')
        break;
      if (arg[1] == '-')
        {
          if (strchr (arg, '=') == NULL)
            entry = find_option (entries, arg + 2, 0);
          g_strv_builder_add (out, arg);
        }
      else
        {
          entry = find_option (entries, NULL, arg[1]);
          if (entry != NULL && entry->arg != G_OPTION_ARG_NONE && arg[2] != '\0')
            {
              char flag[3] = { '-', arg[1], '\0' };

              g_strv_builder_add (out, flag);
              g_strv_builder_add (out, arg + 2);
              continue;
            }
          g_strv_builder_add (out, arg);
        }
      /* `-j 2`, `--jobs 2`: the value is never an option of its own. */
      if (entry != NULL && entry->arg != G_OPTION_ARG_NONE && i + 1 < argc)
        g_strv_builder_add (out, argv[++i]);
    }
  for (; i < argc; i++)
    g_strv_builder_add (out, argv[i]);
  return g_strv_builder_end (out);
}

static int
cmd_map (int    argc,
         char **argv)
{
  g_auto(MapOptions) opts = { 0 };
  const GOptionEntry entries[] = {
    { "type", 't', 0, G_OPTION_ARG_STRING, &opts.pool_type,
      "Pool type (see “fiber pool-types”; default: $FIBER_POOL_TYPE, the "
      "default-pool-type setting, else process)", "TYPE" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opts.config,
      "Make the pool from a workflow config (a JSON object such as "
      "{\"pool_type\": \"thread\", \"processes\": 4}; see the examples "
      "in data/workflows); not with --type or --jobs", "FILE" },
    { "jobs", 'j', 0, G_OPTION_ARG_STRING, &opts.jobs_str,
      "Number of workers (default 0: one per CPU)", "N" },
    { "chunksize", 0, 0, G_OPTION_ARG_STRING, &opts.chunksize_str,
      "Items sent to a worker at a time (0: automatic; default 1 for "
      "commands, automatic for --task)", "N" },
    { "task", 0, 0, G_OPTION_ARG_STRING, &opts.task,
      "Map the registered task NAME over GVariant texts, one per line, "
      "instead of running a command", "NAME" },
    { "backend", 0, 0, G_OPTION_ARG_STRING, &opts.backend,
      "Job backend of the workers: slurm or kubernetes, configured by the "
      "slurm-*/kubernetes-* settings (implies -t remote)", "NAME" },
    { "progress", 0, 0, G_OPTION_ARG_NONE, &opts.progress,
      "Show the progress bar even when standard error is not a terminal", NULL },
    { "no-progress", 0, 0, G_OPTION_ARG_NONE, &opts.no_progress,
      "Never show the progress bar", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts.rest,
      NULL, "[--] CMD [ARG…]" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) args = NULL;
  g_autoptr(GArray) lines = NULL;
  g_autoptr(GArray) failures = NULL;
  g_autoptr(GVariant) iterable = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(FiberMapResult) result = NULL;
  Progress progress = { 0 };
  MapState state = { 0 };
  guint jobs = 0;
  guint chunksize;
  guint received = 0;
  gboolean pool_failed = FALSE;
  const char *task;

  context = g_option_context_new ("— run CMD once per line of standard input");
  g_option_context_set_summary (context,
    "Runs CMD on a pool of workers once per line of standard input, with “{}”\n"
    "in any argument replaced by the line (without “{}”, the line is appended\n"
    "as the last argument).  The output of each command is printed in input\n"
    "order.  With --task, maps a registered task over GVariant texts instead\n"
    "and prints each result as GVariant text.");
  g_option_context_set_description (context,
    "Exit status: 0 when every line succeeded, 1 when some failed (a summary\n"
    "of the failed lines is printed last), 2 for bad usage or input.\n\n"
    "Examples:\n"
    "  ls *.txt | fiber map -j 4 -- gzip -k {}\n"
    "  ls *.txt | fiber map -t remote --backend slurm -j 8 -- gzip -k {}\n"
    "  seq 10 | sed 's/.*/(&,)/' | fiber map --task fiber.echo\n"
    "  ls *.txt | fiber map --config thread.json -- wc -l {}");
  g_option_context_add_main_entries (context, entries, NULL);
  /* Stop at the first non-option: everything from CMD on is its own. */
  g_option_context_set_strict_posix (context, TRUE);

  args = split_attached_values (entries, argc, argv);
  if (!g_option_context_parse_strv (context, &args, &error))
    {
      g_printerr ("fiber map: %s\n(see “fiber map --help”)\n", error->message);
      return EXIT_USAGE;
    }

  if (!parse_uint_option ("-j", opts.jobs_str, MAX_JOBS, &jobs,
                          "a number of workers from 1 to " G_STRINGIFY (MAX_JOBS)
                          ", or 0 for one per CPU", &error))
    {
      g_printerr ("fiber map: %s\n", error->message);
      return EXIT_USAGE;
    }

  if (opts.config != NULL && opts.backend != NULL)
    {
      g_printerr ("fiber map: --config names the backend (its \"backend\" key); "
                  "it cannot be combined with --backend\n");
      return EXIT_USAGE;
    }
  if (opts.config != NULL && (opts.pool_type != NULL || opts.jobs_str != NULL))
    {
      g_printerr ("fiber map: --config gives the pool type and the number of workers; "
                  "it cannot be combined with --type or --jobs\n");
      return EXIT_USAGE;
    }

  chunksize = opts.task != NULL ? 0 : 1;
  if (!parse_uint_option ("--chunksize", opts.chunksize_str, G_MAXUINT, &chunksize,
                          "a number of items, 0 for automatic", &error))
    {
      g_printerr ("fiber map: %s\n", error->message);
      return EXIT_USAGE;
    }

  state.command_mode = opts.task == NULL;
  if (state.command_mode)
    {
      /* The remaining array may start with a literal “--” when options
       * follow it; it is not part of the command. */
      char **command = opts.rest;

      if (command != NULL && command[0] != NULL && g_str_equal (command[0], "--"))
        command++;
      if (command == NULL || command[0] == NULL)
        {
          g_printerr ("fiber map: no command given (usage: fiber map [OPTION…] -- CMD [ARG…], "
                      "or --task NAME)\n");
          return EXIT_USAGE;
        }
      if (command[0][0] == '\0')
        {
          g_printerr ("fiber map: the command name is empty\n");
          return EXIT_USAGE;
        }
      task = "fiber.subprocess";
    }
  else
    {
      if (opts.rest != NULL && opts.rest[0] != NULL &&
          !(g_str_equal (opts.rest[0], "--") && opts.rest[1] == NULL))
        {
          g_printerr ("fiber map: --task takes no command (got “%s”)\n", opts.rest[0]);
          return EXIT_USAGE;
        }
      if (!fiber_task_is_registered (opts.task))
        {
          g_auto(GStrv) known = fiber_task_list ();
          g_autofree char *list = g_strjoinv (", ", known);

          g_printerr ("fiber map: unknown task “%s” (registered: %s)\n", opts.task, list);
          return EXIT_USAGE;
        }
      task = opts.task;
    }

  /* Read and validate all input before starting any worker. */
  lines = read_lines (stdin, !state.command_mode, &error);
  if (lines == NULL)
    {
      g_printerr ("fiber map: %s\n", error->message);
      return EXIT_USAGE;
    }
  if (state.command_mode)
    {
      char **command = opts.rest;
      if (g_str_equal (command[0], "--"))
        command++;
      iterable = build_command_iterable (command, lines);
    }
  else
    {
      iterable = build_task_iterable (lines, &error);
      if (iterable == NULL)
        {
          g_printerr ("fiber map: %s\n", error->message);
          return EXIT_USAGE;
        }
    }

  if (lines->len == 0)
    return EXIT_SUCCESS;

  if (opts.config != NULL)
    pool = fiber_pool_new_from_config_file (opts.config, &error);
  else
    if (opts.config != NULL)
    pool = fiber_pool_new_from_config_file (opts.config, &error);
  else if (opts.backend != NULL)
    pool = pool_with_backend (&opts, jobs, &error);
  else
    pool = fiber_pool_new (opts.pool_type, jobs, &error);
  if (pool == NULL)
    {
      g_printerr ("fiber map: %s\n", error->message);
      /* a bad or unreadable --config is bad usage too */
      return g_error_matches (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT) ||
             error->domain == G_FILE_ERROR
               ? EXIT_USAGE : EXIT_FAILURE;
    }

  install_signal_handlers ();

  progress.enabled = !opts.no_progress && (opts.progress || isatty (STDERR_FILENO));
  progress.tty = isatty (STDERR_FILENO);
  progress.total = lines->len;
  progress.start_usec = g_get_monotonic_time ();
  /* Let the first draw happen a moment after start, not before any result. */
  progress.last_draw_usec = progress.start_usec;

  failures = g_array_new (FALSE, FALSE, sizeof (Failure));
  g_array_set_clear_func (failures, failure_clear);
  state.lines = lines;
  state.failures = failures;

  result = fiber_pool_imap (pool, task, iterable, chunksize, &error);
  if (result == NULL)
    {
      g_printerr ("fiber map: %s\n", error->message);
      stop_pool (pool, FALSE);
      return g_error_matches (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT)
               ? EXIT_USAGE : EXIT_FAILURE;
    }

  while (received < lines->len && stop_signal == 0 && !state.output_broken)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;
      guint index = G_MAXUINT;
      gboolean got;

      /* Poll first; flush our output only when about to wait, so a fast
       * stream of small results is not flushed item by item. */
      got = fiber_map_result_next (result, 0, &index, &value, &item_error);
      if (!got && g_error_matches (item_error, FIBER_ERROR, FIBER_ERROR_TIMEOUT))
        {
          g_clear_error (&item_error);
          if (fflush (stdout) != 0)
            {
              state.output_broken = TRUE;
              break;
            }
          progress_draw (&progress, fiber_map_result_get_n_completed (result), FALSE);
          got = fiber_map_result_next (result, 100, &index, &value, &item_error);
          if (!got && g_error_matches (item_error, FIBER_ERROR, FIBER_ERROR_TIMEOUT))
            continue;
        }

      if (!got && item_error == NULL)
        break;  /* no more items */

      if (index >= lines->len)
        {
          /* An error that belongs to no item: the pool itself failed. */
          progress_clear (&progress);
          g_printerr ("fiber map: %s\n",
                      item_error != NULL ? item_error->message : "the pool returned an invalid item");
          pool_failed = TRUE;
          break;
        }

      received++;
      handle_item (&state, &progress, index, got ? value : NULL,
                   got && value != NULL ? NULL : item_error);
      progress_draw (&progress, fiber_map_result_get_n_completed (result), FALSE);
    }

  if (!state.output_broken && fflush (stdout) != 0)
    state.output_broken = TRUE;

  if (stop_signal != 0)
    {
      int signum = stop_signal;

      progress_clear (&progress);
      stop_pool (pool, FALSE);
      g_printerr ("fiber map: stopped by signal %d after %u of %u lines\n",
                  signum, received, lines->len);
      return 128 + signum;
    }

  if (state.output_broken)
    {
      progress_clear (&progress);
      stop_pool (pool, FALSE);
      return EXIT_FAILURE;
    }

  progress_finish (&progress, received);
  stop_pool (pool, !pool_failed);

  if (pool_failed || received < lines->len)
    {
      if (!pool_failed)
        g_printerr ("fiber map: the pool delivered %u of %u results\n", received, lines->len);
      if (failures->len > 0)
        print_failure_summary (&state, lines->len);
      return EXIT_FAILURE;
    }

  if (failures->len > 0)
    {
      print_failure_summary (&state, lines->len);
      return EXIT_ITEMS_FAILED;
    }

  return EXIT_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* The other subcommands                                               */
/* ------------------------------------------------------------------ */

static gboolean
parse_no_arguments (const char  *name,
                    const char  *summary,
                    int         *argc,
                    char      ***argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, summary);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      g_printerr ("fiber %s: %s\n", name, error->message);
      return FALSE;
    }
  if (*argc > 1)
    {
      g_printerr ("fiber %s: unexpected argument “%s”\n", name, (*argv)[1]);
      return FALSE;
    }
  return TRUE;
}

static int
cmd_pool_types (int    argc,
                char **argv)
{
  g_auto(GStrv) types = NULL;

  if (!parse_no_arguments ("pool-types",
                           "Lists the pool types that “fiber map -t” and fiber_pool_new() accept.",
                           &argc, &argv))
    return EXIT_USAGE;

  types = fiber_pool_list_types ();
  for (guint i = 0; types != NULL && types[i] != NULL; i++)
    g_print ("%s\n", types[i]);
  return EXIT_SUCCESS;
}

static int
cmd_tasks (int    argc,
           char **argv)
{
  g_auto(GStrv) tasks = NULL;

  if (!parse_no_arguments ("tasks",
                           "Lists the tasks registered in this program (for “fiber map --task”).",
                           &argc, &argv))
    return EXIT_USAGE;

  tasks = fiber_task_list ();
  for (guint i = 0; tasks != NULL && tasks[i] != NULL; i++)
    g_print ("%s\n", tasks[i]);
  return EXIT_SUCCESS;
}

static int
cmd_worker (int    argc,
            char **argv)
{
  if (!parse_no_arguments ("worker",
                           "The entry point of pool workers.  Pools start it with the master's\n"
                           "address and credentials in the environment; it serves tasks until\n"
                           "the pool stops it.",
                           &argc, &argv))
    return EXIT_USAGE;

  /* fiber_init() has already served and exited if this process was
   * started as a worker, so reaching this point means it was not. */
  g_printerr ("fiber worker: no worker environment: this command is started by pools,\n"
              "which pass the master's address and credentials in the environment.\n"
              "To run work from the command line, use “fiber map”.\n");
  return EXIT_USAGE;
}

/* Where `fiber bench` finds bench/run.py and the directory of the bench
 * programs (bench-pool), in this order:
 *   1. FIBER_BENCH_DRIVER (run.py) and, if set, FIBER_BENCH_DIR;
 *   2. a build tree: this program is BUILD/plugin/tools/fiber, and
 *      bench/meson.build copies the driver to BUILD/bench;
 *   3. the installed copies, DATADIR/fiber-1.0/bench/run.py and
 *      LIBEXECDIR/fiber-1.0/bench.
 * Fills @driver and @bench_dir (%NULL: run.py's own default) and returns
 * TRUE, or prints what it looked for and returns FALSE. */
static gboolean
find_bench (char **driver,
            char **bench_dir)
{
  const char *env_driver = g_getenv ("FIBER_BENCH_DRIVER");
  const char *env_dir = g_getenv ("FIBER_BENCH_DIR");
  g_autofree char *self_exe = NULL;
  g_autofree char *build_bench = NULL;
  g_autofree char *build_driver = NULL;
  g_autofree char *installed_driver = NULL;

  if (env_driver != NULL && *env_driver != '\0')
    {
      if (!g_file_test (env_driver, G_FILE_TEST_IS_REGULAR))
        {
          g_printerr ("fiber bench: FIBER_BENCH_DRIVER=%s is not a file\n", env_driver);
          return FALSE;
        }
      *driver = g_strdup (env_driver);
      *bench_dir = env_dir != NULL && *env_dir != '\0' ? g_strdup (env_dir) : NULL;
      return TRUE;
    }

  self_exe = g_file_read_link ("/proc/self/exe", NULL);
  if (self_exe != NULL)
    {
      g_autofree char *tools_dir = g_path_get_dirname (self_exe);

      build_bench = g_canonicalize_filename ("../../bench", tools_dir);
      build_driver = g_build_filename (build_bench, "run.py", NULL);
      if (g_file_test (build_driver, G_FILE_TEST_IS_REGULAR))
        {
          *driver = g_steal_pointer (&build_driver);
          *bench_dir = env_dir != NULL && *env_dir != '\0'
                       ? g_strdup (env_dir) : g_steal_pointer (&build_bench);
          return TRUE;
        }
    }

  installed_driver = g_build_filename (FIBER_BENCH_DATADIR, "run.py", NULL);
  if (g_file_test (installed_driver, G_FILE_TEST_IS_REGULAR))
    {
      *driver = g_steal_pointer (&installed_driver);
      *bench_dir = g_strdup (env_dir != NULL && *env_dir != '\0'
                             ? env_dir : FIBER_BENCH_LIBEXECDIR);
      return TRUE;
    }

  g_printerr ("fiber bench: the benchmark driver (run.py) was not found:\n"
              "  not in a build tree next to this program%s%s\n"
              "  not installed as %s\n"
              "Install the benchmarks (meson install), run the `fiber` of a build\n"
              "tree, or set FIBER_BENCH_DRIVER to bench/run.py and FIBER_BENCH_DIR\n"
              "to the directory holding bench-pool (BUILD/bench).\n",
              build_driver != NULL ? " (" : "",
              build_driver != NULL ? build_driver : "",
              installed_driver);
  return FALSE;
}

static int
cmd_bench (int    argc,
           char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autofree char *driver = NULL;
  g_autofree char *bench_dir = NULL;

  if (argc > 1 && (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")))
    {
      g_print ("Usage:\n  fiber bench [--json] [--quick]\n\n"
               "Runs the benchmarks (fiber against multiprocessing and\n"
               "concurrent.futures) with bench/run.py: the one named by\n"
               "FIBER_BENCH_DRIVER, else the one of the build tree this program\n"
               "is in, else the installed one.  FIBER_BENCH_DIR overrides the\n"
               "directory of the bench programs.\n");
      return EXIT_SUCCESS;
    }

  if (!find_bench (&driver, &bench_dir))
    return EXIT_FAILURE;

  args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) FIBER_PYTHON3);
  g_ptr_array_add (args, driver);
  if (bench_dir != NULL)
    {
      g_ptr_array_add (args, (gpointer) "--bench-dir");
      g_ptr_array_add (args, bench_dir);
    }
  for (int i = 1; i < argc; i++)
    g_ptr_array_add (args, argv[i]);
  g_ptr_array_add (args, NULL);

  execv (FIBER_PYTHON3, (char **) args->pdata);
  g_printerr ("fiber bench: cannot run %s: %s\n", FIBER_PYTHON3, g_strerror (errno));
  return EXIT_FAILURE;
}

typedef struct
{
  const char *name;
  int       (*run) (int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
  { "map",        cmd_map,        "Run a command or a task once per line of standard input on a pool" },
  { "pool-types", cmd_pool_types, "List the pool types" },
  { "tasks",      cmd_tasks,      "List the registered tasks" },
  { "worker",     cmd_worker,     "Serve tasks for a pool (started by pools)" },
  { "bench",      cmd_bench,      "Run the benchmarks against multiprocessing" },
};

static void
print_usage (FILE *stream)
{
  fprintf (stream,
           "Usage:\n"
           "  fiber COMMAND [OPTION…]\n\n"
           "Commands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (stream, "  %-12s %s\n", commands[i].name, commands[i].summary);
  fprintf (stream,
           "\nRun “fiber COMMAND --help” for the options of a command.\n");
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *name;

  setlocale (LC_ALL, "");

  /* In a process started as a pool worker this serves and exits. */
  if (!fiber_init (&argc, &argv, &error))
    {
      g_printerr ("fiber: %s\n", error->message);
      return EXIT_FAILURE;
    }

  g_set_prgname ("fiber");

  if (argc < 2)
    {
      print_usage (stderr);
      return EXIT_USAGE;
    }

  name = argv[1];
  if (g_str_equal (name, "--help") || g_str_equal (name, "-h") || g_str_equal (name, "help"))
    {
      print_usage (stdout);
      return EXIT_SUCCESS;
    }
  if (g_str_equal (name, "--version"))
    {
      g_print ("fiber %u.%u.%u\n", fiber_get_major_version (),
               fiber_get_minor_version (), fiber_get_micro_version ());
      return EXIT_SUCCESS;
    }

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (g_str_equal (name, commands[i].name))
        {
          g_autofree char *prgname = g_strdup_printf ("fiber %s", name);

          g_set_prgname (prgname);
          /* The subcommand sees argv[0] = "fiber NAME" and its own options. */
          argv[1] = prgname;
          return commands[i].run (argc - 1, argv + 1);
        }
    }

  g_printerr ("fiber: unknown command “%s”\n\n", name);
  print_usage (stderr);
  return EXIT_USAGE;
}
