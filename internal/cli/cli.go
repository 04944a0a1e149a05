package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// Exit codes; exitCode says which error gets which.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// DefaultConfigPath is used when neither --config nor PWB_CONFIG is given.
const DefaultConfigPath = "config/database.yml"

// usageError marks a mistake in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// app is what every command shares: where output goes and how to reach the
// configuration and the shards.
type app struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	configPath string
	cfg        *config.Config
	set        *shard.Set
	// connectTimeout, when set before the shard set is first used, bounds
	// connecting to shards instead of shard.DefaultConnectTimeout.
	connectTimeout time.Duration
	// statementTimeout, when set before the shard set is first used, is
	// every session's statement_timeout (shard.WithStatementTimeout).
	statementTimeout time.Duration
}

// Run executes the pwb command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, args, stdin, stdout, stderr, os.Getenv)
}

// run is Run with the environment injected, for tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	defer a.close()
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	code := exitCode(err)
	if code == ExitOK {
		return code
	}
	fmt.Fprintf(stderr, "pwb: %s\n", describe(err))
	if code == ExitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// exitCode is the one place where an error becomes the exit code. A
// mistake in how the command was called is ExitUsage, and so is input of
// kind fault.Invalid (a malformed subdomain, a short password), whether the
// command's own checks or a package's found it: the command has to be
// called differently. Not found, conflict, refused and unavailable are
// ExitFailed, like any other failure; the one line on stderr says which.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return ExitUsage
	}
	switch fault.KindOf(err) {
	case fault.Invalid:
		return ExitUsage
	case fault.NotFound, fault.Conflict, fault.Refused, fault.Unavailable:
		return ExitFailed
	}
	return ExitFailed
}

// describe turns an error into the one line an operator sees: a connection
// failure names the database and address instead of pgx's long form, and a
// missing table points at the migrations.
func describe(err error) string {
	msg := err.Error()
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Config != nil {
		msg = fmt.Sprintf("cannot connect to database %s on %s: %v", ce.Config.Database,
			net.JoinHostPort(ce.Config.Host, strconv.Itoa(int(ce.Config.Port))), shard.Unwrap(err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		msg += " (is the database migrated? run `pwb db migrate`)"
	}
	return strings.Join(strings.Fields(msg), " ")
}

// isCobraUsage recognises the usage errors cobra raises itself.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "invalid argument", "flag needs an argument", "accepts ", "requires at least", "if any flags in the group"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "pwb",
		Short:         "PropertyWebBuilder: multi-tenant real-estate websites on sharded PostgreSQL",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return cmd.Help()
		},
	}
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "database configuration file (default $PWB_CONFIG or "+DefaultConfigPath+")")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.dbCommand(), a.tenantsCommand(), a.shardingCommand(), a.usersCommand(), a.reportCommand(), a.serveCommand(), a.devCommand())
	return root
}

// group makes a command that only holds subcommands and says so when called
// without a known one.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return usagef("%q needs a subcommand: %s", cmd.CommandPath(), strings.Join(subcommands(cmd), ", "))
		},
	}
	c.AddCommand(subs...)
	return c
}

// unknownCommand refuses name as a subcommand of cmd, suggesting the
// closest ones (a typo, or the start of a name) or else listing them all.
func unknownCommand(cmd *cobra.Command, name string) error {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // typos of one or two letters
	}
	if close := cmd.SuggestionsFor(name); len(close) > 0 {
		return usagef("unknown command %q for %q: did you mean %s?", name, cmd.CommandPath(), strings.Join(close, " or "))
	}
	return usagef("unknown command %q for %q (choose one of: %s)", name, cmd.CommandPath(), strings.Join(subcommands(cmd), ", "))
}

// subcommands names cmd's visible subcommands.
func subcommands(cmd *cobra.Command) []string {
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return names
}

// exactArgs is cobra.ExactArgs with named arguments and a usage error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s takes %d argument(s): %s (got %d)", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

var noArgs = exactArgs()

// env is the selected environment.
func (a *app) env() string {
	if e := a.getenv("PWB_ENV"); e != "" {
		return e
	}
	return "development"
}

// config loads the configuration once per command.
func (a *app) config() (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	cfg, err := config.Load(a.configFile(), a.env())
	if err != nil {
		return nil, err
	}
	a.cfg = cfg
	return cfg, nil
}

// configFile is the database configuration's path: --config, else
// PWB_CONFIG, else DefaultConfigPath.
func (a *app) configFile() string {
	path := a.configPath
	if path == "" {
		path = a.getenv("PWB_CONFIG")
	}
	if path == "" {
		path = DefaultConfigPath
	}
	return path
}

// shards returns the process's shard set.
func (a *app) shards() (*shard.Set, error) {
	if a.set != nil {
		return a.set, nil
	}
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	var opts []shard.Option
	if a.connectTimeout > 0 {
		opts = append(opts, shard.WithConnectTimeout(a.connectTimeout))
	}
	if a.statementTimeout > 0 {
		opts = append(opts, shard.WithStatementTimeout(a.statementTimeout))
	}
	a.set = shard.NewSet(cfg, opts...)
	return a.set, nil
}

// checkShardFlag refuses a --shard value that is not configured.
func checkShardFlag(set *shard.Set, name string) error {
	if _, err := set.Shard(name); err != nil {
		return fmt.Errorf("--shard %s: not configured (configured: %s)", name, listShort(set.Names(), 10))
	}
	return nil
}

// primary returns the shard set and the pool of primary, where the registry lives.
func (a *app) primary() (*shard.Set, *pgxpool.Pool, error) {
	set, err := a.shards()
	if err != nil {
		return nil, nil, err
	}
	p, err := set.Primary()
	return set, p, err
}

func (a *app) close() {
	if a.set != nil {
		a.set.Close()
	}
}

// printJSONLine writes v as one line of JSON, for streams of results.
func (a *app) printJSONLine(v any) {
	json.NewEncoder(a.stdout).Encode(v)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
