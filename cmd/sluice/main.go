// Command sluice is a WebRTC streaming server: publishers push with WHIP,
// viewers pull with WHEP. Run "sluice -h" for its settings; the example
// sluice.yml documents each of them. "sluice version" prints the version
// and build information.
//
// This file only reads the configuration, starts the server, reloads it on
// SIGHUP and stops it on SIGINT or SIGTERM; everything else lives in
// internal/server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/memtrim"
	"github.com/sluice-media/sluice/internal/server"
)

// exitTimeout bounds the time from the stop signal to the end of the process,
// so that a stuck session can never stall a deploy or a container restart.
const exitTimeout = 5 * time.Second

// defaultGCPercent is the garbage collector's heap goal (GOGC) unless the
// environment sets GOGC. Connected viewers allocate next to nothing and
// hold about 30 KB each, so collections happen mostly while viewers join,
// when pion allocates for every handshake; half again Go's default
// headroom (100) takes about 15 % off the CPU per setup for about 20 KiB
// more resident per viewer (docs/PERFORMANCE.md, Scale).
const defaultGCPercent = 150

func main() {
	os.Exit(run())
}

// run returns the exit status: 0 after a clean stop or -h, 1 when the server
// fails to start or stop, 2 for a configuration error.
func run() int {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		printVersion(os.Stdout)
		return 0
	}
	cfg, err := config.Load(os.Args[1:], os.Environ())
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		// One line per problem, each with the program name.
		fmt.Fprintln(os.Stderr, "sluice: "+strings.ReplaceAll(err.Error(), "\n", "\nsluice: "))
		return 2
	}
	log := cfg.Logger(os.Stderr)
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reads the configuration again, from the same file,
	// environment and flags, and applies what can change while running;
	// caught from here on, so that one sent while starting ends nothing.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("sluice failed to start", "err", err)
		return 1
	}

	trimmed := make(chan struct{})
	go func() { // free memory back to the system after join bursts
		defer close(trimmed)
		memtrim.Run(ctx, log)
	}()
	defer func() { <-trimmed }() // Run returns once ctx is done

	for running := true; running; {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading the configuration")
			next, err := config.Load(os.Args[1:], os.Environ())
			if err != nil {
				log.Error("config reload refused; the running config stays", "err", strings.ReplaceAll(err.Error(), "\n", "; "))
				continue
			}
			_ = srv.Reload(next) // it logs what it applied or why it refused
		case <-ctx.Done():
			running = false
		}
	}
	stop() // from here a second signal ends the process at once
	log.Info("sluice stopping", "deadline", exitTimeout.String())

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	timer := time.NewTimer(exitTimeout)
	defer timer.Stop()
	select {
	case err := <-closed:
		if err != nil {
			log.Error("sluice stopped with an error", "err", err)
			return 1
		}
		return 0
	case <-timer.C:
		log.Error("sluice did not stop in time; exiting anyway", "deadline", exitTimeout.String())
		return 1
	}
}
