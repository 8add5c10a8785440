package main

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// durationFlag is a flag.Value for the web.config time attributes given as
// flags: "00:02:00" (as in web.config), "2m" or whole seconds ("120").
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := config.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}
