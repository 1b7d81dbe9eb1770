package cli

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coligo/coligo/api"
)

// newSubscriptionCmd is Code Engine's "subscription" (alias "sub"): cron
// subscriptions of the selected project.
func newSubscriptionCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("subscription", []string{"sub"}, "Manage event subscriptions of the selected project")
	cron := &cobra.Command{Use: "cron", Aliases: []string{"ping"}, Short: "Run a job, or call an app or a function, on a schedule",
		Long: `A cron subscription delivers an event on each tick of its schedule (5-field
crontab, in its time zone): an HTTP POST with CloudEvents ce-* headers and its
data as the body to an app or a function, or a new run of a job with the event
in CE_DATA, CE_ID, CE_SOURCE, CE_TIME, CE_TYPE and CONTENT_TYPE. Each tick is
delivered once; ticks missed while the server was down are not replayed, but
the last of them is delivered late.`}
	cron.AddCommand(newCronCreate(e), newCronUpdate(e), newCronGet(e), newCronList(e),
		newDeleteCmd(e, "subscription", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteCronSubscription(cmd.Context(), project, name)
		}))
	cmd.AddCommand(cron)
	return cmd
}

// cronFlags are Code Engine's flags of cron subscriptions.
type cronFlags struct {
	name, destination, destinationType, schedule, timeZone, data, dataBase64, contentType, path string
	extensions, extensionsRm                                                                    []string
}

func (f *cronFlags) add(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	fs.StringVarP(&f.name, "name", "n", "", "subscription name")
	fs.StringVarP(&f.destination, "destination", "d", "", "name of the app, job or function to deliver to")
	fs.StringVar(&f.destinationType, "destination-type", "", "app (default), job or function")
	fs.StringVarP(&f.schedule, "schedule", "s", "", "crontab schedule, e.g. '*/5 * * * *' (default '* * * * *', every minute); quote it")
	fs.StringVar(&f.timeZone, "time-zone", "", "IANA time zone of the schedule, e.g. Europe/Berlin (default UTC)")
	fs.StringVar(&f.data, "data", "", "the event's data, at most 4096 bytes")
	fs.StringVar(&f.dataBase64, "data-base64", "", "the event's data, base64-encoded")
	fs.StringVar(&f.contentType, "content-type", "", "media type of the data, e.g. application/json")
	fs.StringVar(&f.path, "path", "", "path of the app or function the event is POSTed to (default /)")
	fs.StringArrayVar(&f.extensions, "extension", nil, "NAME=VALUE: a CloudEvents extension attribute of every event (repeatable)")
	if update {
		fs.StringArrayVar(&f.extensionsRm, "extension-rm", nil, "NAME of an extension attribute to remove (repeatable)")
	}
	alias := map[string]string{"dt": "destination-type", "tz": "time-zone", "da": "data", "db": "data-base64", "ct": "content-type",
		"ext": "extension", "ext-rm": "extension-rm"}
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if long, ok := alias[name]; ok {
			name = long
		}
		return pflag.NormalizedName(name)
	})
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagsMutuallyExclusive("data", "data-base64")
}

// prototype is the fields the flags give.
func (f *cronFlags) prototype() (api.CronSubscriptionPrototype, error) {
	p := api.CronSubscriptionPrototype{Name: f.name, Destination: f.destination, Schedule: f.schedule, TimeZone: f.timeZone,
		Data: f.data, ContentType: f.contentType, Path: f.path}
	switch f.destinationType {
	case "", "app", "application":
		if f.destinationType != "" {
			p.DestinationType = "app"
		}
	case "job", "function":
		p.DestinationType = f.destinationType
	default:
		return p, fmt.Errorf("--destination-type %q is not app, job or function", f.destinationType)
	}
	if f.dataBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(f.dataBase64)
		if err != nil {
			return p, fmt.Errorf("--data-base64 is not base64: %w", err)
		}
		p.Data = string(b)
	}
	for _, kv := range f.extensions {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return p, fmt.Errorf("--extension wants NAME=VALUE, got %q", kv)
		}
		if p.Extensions == nil {
			p.Extensions = map[string]string{}
		}
		p.Extensions[k] = v
	}
	return p, nil
}

func (e *env) printCron(s *api.CronSubscription, headline string) error {
	return e.printOne(s, headline, func(w io.Writer) {
		ready := s.Status == "ready"
		fmt.Fprintf(w, "Name:\t%s\nDestination Type:\t%s\nDestination:\t%s\nSchedule:\t%s\nTime Zone:\t%s\n", s.Name, s.DestinationType, s.Destination, s.Schedule, s.TimeZone)
		if s.Path != "" {
			fmt.Fprintf(w, "Path:\t%s\n", s.Path)
		}
		fmt.Fprintf(w, "Content Type:\t%s\nData:\t%s\nReady:\t%v\n", s.ContentType, s.Data, ready)
		if !ready {
			fmt.Fprintf(w, "Reason:\t%s\n", s.StatusDetails.Message)
		}
		fmt.Fprintf(w, "Next Tick:\t%s\n", s.StatusDetails.NextTick)
		if len(s.StatusDetails.Deliveries) > 0 {
			fmt.Fprintln(w, "Deliveries:")
			for _, d := range s.StatusDetails.Deliveries {
				fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", d.Tick, d.Outcome, d.ID, d.Message)
			}
		}
	})
}

func newCronCreate(e *env) *cobra.Command {
	var f cronFlags
	cmd := &cobra.Command{
		Use: "create", Short: "Create a cron subscription", Args: cobra.NoArgs,
		Example: "  coligo sub cron create --name nightly --destination-type job --destination batch --schedule '0 2 * * *' --time-zone Europe/Berlin",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			p, err := f.prototype()
			if err != nil {
				return err
			}
			s, err := c.CreateCronSubscription(cmd.Context(), project, p)
			if err != nil {
				return err
			}
			return e.printCron(s, "Created cron subscription "+s.Name)
		},
	}
	f.add(cmd, false)
	cmd.MarkFlagRequired("destination")
	return cmd
}

func newCronUpdate(e *env) *cobra.Command {
	var f cronFlags
	cmd := &cobra.Command{
		Use: "update", Short: "Change a cron subscription", Args: cobra.NoArgs,
		Example: "  coligo sub cron update --name nightly --schedule '30 2 * * *' --extension-rm tenant",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			p, err := f.prototype()
			if err != nil {
				return err
			}
			patch := map[string]any{}
			for _, fl := range []struct{ flag, field, value string }{{"destination", "destination", p.Destination},
				{"destination-type", "destination_type", p.DestinationType}, {"schedule", "schedule", p.Schedule}, {"time-zone", "time_zone", p.TimeZone},
				{"data", "data", p.Data}, {"data-base64", "data", p.Data}, {"content-type", "content_type", p.ContentType}, {"path", "path", p.Path}} {
				if cmd.Flags().Changed(fl.flag) {
					patch[fl.field] = fl.value
				}
			}
			if len(p.Extensions) > 0 || len(f.extensionsRm) > 0 {
				ext := map[string]any{}
				for k, v := range p.Extensions {
					ext[k] = v
				}
				for _, k := range f.extensionsRm {
					ext[k] = nil
				}
				patch["extensions"] = ext
			}
			if len(patch) == 0 {
				return fmt.Errorf("nothing to change: give a flag of what changes")
			}
			s, err := c.UpdateCronSubscription(cmd.Context(), project, f.name, "*", patch)
			if err != nil {
				return err
			}
			return e.printCron(s, "Updated cron subscription "+s.Name)
		},
	}
	f.add(cmd, true)
	return cmd
}

func newCronGet(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "get", Short: "Show a cron subscription, its next tick and its last deliveries", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			s, err := c.GetCronSubscription(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.printCron(s, "")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "subscription name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newCronList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the cron subscriptions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			all, err := c.AllCronSubscriptions(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(all, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tAge\tReady\tDestination\tSchedule\tData")
				for _, s := range all {
					fmt.Fprintf(w, "%s\t%s\t%v\t%s %s\t%s\t%s\n", s.Name, age(s.CreatedAt), s.Status == "ready", s.DestinationType, s.Destination, s.Schedule, s.Data)
				}
			})
		},
	}
}
