// Command composecheck loads a Compose file the way Docker Compose does and prints its services.
//
// compose-go is the library Docker Compose is built on: loading validates the file against the
// Compose specification's JSON schema, interpolates variables and normalises it. A file it
// refuses would be refused by `docker compose` too. The resolved services go to stdout as JSON
// (name -> command, entrypoint, image, network mode, restart policy, environment keys,
// depends_on), for the Python test to check against the supervisor's own commands.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

type service struct {
	Command     []string `json:"command"`
	Entrypoint  []string `json:"entrypoint"`
	Image       string   `json:"image"`
	NetworkMode string   `json:"network_mode"`
	Restart     string   `json:"restart"`
	StopSignal  string   `json:"stop_signal"`
	Environment []string `json:"environment"`
	DependsOn   []string `json:"depends_on"`
	Volumes     []string `json:"volumes"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck <compose file>")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(
		[]string{os.Args[1]},
		cli.WithName("tickwave"),
		cli.WithInterpolation(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out := map[string]service{}
	for name, config := range project.Services {
		environment := make([]string, 0, len(config.Environment))
		for key := range config.Environment {
			environment = append(environment, key)
		}
		sort.Strings(environment)
		dependsOn := make([]string, 0, len(config.DependsOn))
		for key := range config.DependsOn {
			dependsOn = append(dependsOn, key)
		}
		sort.Strings(dependsOn)
		volumes := make([]string, 0, len(config.Volumes))
		for _, volume := range config.Volumes {
			volumes = append(volumes, volume.Source+":"+volume.Target)
		}
		out[name] = service{
			Command: config.Command, Entrypoint: config.Entrypoint, Image: config.Image,
			NetworkMode: config.NetworkMode, Restart: config.Restart, StopSignal: config.StopSignal,
			Environment: environment, DependsOn: dependsOn, Volumes: volumes,
		}
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", " ")
	if err := encoder.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
