package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

func (a *app) tenantsSetStatusCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "set-status TENANT active|read_only|maintenance",
		Short: "Open a tenant's site, make it read-only, or take it down for maintenance",
		Long: `Sets a tenant's status. Every running pwb serve obeys the change at once:
read_only keeps the site readable and answers changes with 503; maintenance
answers every page with a 503 maintenance page. TENANT is an id or subdomain.`,
		Args: exactArgs("TENANT", "STATUS"),
		RunE: func(_ *cobra.Command, args []string) error {
			status := args[1]
			if !registry.ValidStatus(status) {
				return usagef("status %q: must be active, read_only or maintenance", status)
			}
			_, primary, err := a.primary()
			if err != nil {
				return err
			}
			w, err := registry.Find(a.ctx, primary, args[0])
			if err != nil {
				return err
			}
			if err := journal.RefuseIfMoving(a.ctx, primary, w.ID); err != nil {
				return err
			}
			if err := registry.SetStatus(a.ctx, primary, w.ID, status); err != nil {
				return err
			}
			before := w.Status
			w.Status = status
			if asJSON {
				return a.printJSON(w)
			}
			fmt.Fprintf(a.stdout, "Tenant %d (%s): %s -> %s\n", w.ID, w.Subdomain, before, status)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the tenant as JSON")
	return c
}

func (a *app) tenantsAddMemberCommand() *cobra.Command {
	var email, role string
	c := &cobra.Command{
		Use:   "add-member TENANT --email E [--role owner|admin]",
		Short: "Give someone a login to a tenant's site admin",
		Long: `Creates the user if needed and makes them a member of the tenant. The
password of a new user is read from standard input (one line), or asked for
without echo on a terminal. An existing user keeps their password.`,
		Args: exactArgs("TENANT"),
		RunE: func(_ *cobra.Command, args []string) error {
			if email == "" {
				return usagef("--email is required")
			}
			if role != account.RoleOwner && role != account.RoleAdmin {
				return usagef("--role %q: must be owner or admin", role)
			}
			norm, err := account.NormalizeEmail(email)
			if err != nil {
				return usagef("--email %q: %v", email, err)
			}
			_, primary, err := a.primary()
			if err != nil {
				return err
			}
			w, err := registry.Find(a.ctx, primary, args[0])
			if err != nil {
				return err
			}
			u, err := account.FindUserByEmail(a.ctx, primary, norm)
			created := false
			if errors.Is(err, account.ErrNotFound) {
				pw, perr := a.readPassword()
				if perr != nil {
					return perr
				}
				u, err = account.CreateUser(a.ctx, primary, norm, pw)
				created = true
			}
			if err != nil {
				return err
			}
			if err := account.AddMember(a.ctx, primary, u.ID, w.ID, role); err != nil {
				return err
			}
			verb := "Added existing user"
			if created {
				verb = "Created user"
			}
			fmt.Fprintf(a.stdout, "%s %s as %s of tenant %d (%s)\n", verb, u.Email, role, w.ID, w.Subdomain)
			return nil
		},
	}
	c.Flags().StringVar(&email, "email", "", "the member's email address")
	c.Flags().StringVar(&role, "role", account.RoleOwner, "owner or admin")
	return c
}

// readPassword reads a new password: hidden at a terminal prompt, or the first
// line of standard input otherwise.
func (a *app) readPassword() (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, "Password for the new user: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		return string(b), account.ValidatePassword(string(b))
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password given on standard input for the new user")
	}
	return pw, account.ValidatePassword(pw)
}
