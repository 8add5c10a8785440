package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseTimeSpan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"00:02:00", 2 * time.Minute, ""},
		{"0:0:1", time.Second, ""},
		{"360:00:00", 360 * time.Hour, ""},
		{"01:30", 90 * time.Minute, ""},
		{"1.02:03:04", 26*time.Hour + 3*time.Minute + 4*time.Second, ""},
		{"2.00:00", 48 * time.Hour, ""},
		{"00:00:01.5", 1500 * time.Millisecond, ""},
		{"00:60:00", 0, "minutes must be 0–59"},
		{"00:00:60", 0, "seconds must be 0–59"},
		{"1.24:00:00", 0, "hours must be 0–23"},
		{"120", 0, "two or three fields"},
		{"", 0, "two or three fields"},
		{"-00:01:00", 0, "hours are not a whole number"},
		{" 00:01:00", 0, "hours"},
		{"00:01:00:00", 0, "two or three fields"},
		{"00:1a:00", 0, "minutes"},
		{"00:01:00.12345678", 0, "fraction"},
		{"x.00:01:00", 0, "days"},
	}
	for _, tt := range tests {
		got, err := ParseTimeSpan(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTimeSpan(%q) = %v, %v; want error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTimeSpan(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatTimeSpan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{2 * time.Minute, "00:02:00"},
		{200 * time.Millisecond, "00:00:00.200"},
		{360 * time.Hour, "360:00:00"},
		{time.Hour + time.Minute + time.Second, "01:01:01"},
		{26*time.Hour + 3*time.Minute + 4*time.Second, "26:03:04"},
		{-1500 * time.Millisecond, "-00:00:01.500"},
	}
	for _, tt := range tests {
		if got := FormatTimeSpan(tt.d); got != tt.want {
			t.Errorf("FormatTimeSpan(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30", 30 * time.Second, true},
		{"0", 0, true},
		{"30s", 30 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"00:15:00", 15 * time.Minute, true},
		{"-5s", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"99999999999999999999", 0, false},
		{"00:60:00", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"512KB", 512 << 10, true},
		{"512kb", 512 << 10, true},
		{"10MB", 10 << 20, true},
		{"10MiB", 10 << 20, true},
		{"10m", 10 << 20, true},
		{"2GB", 2 << 30, true},
		{"100B", 100, true},
		{"", 0, false},
		{"MB", 0, false},
		{"1.5MB", 0, false},
		{"-1", 0, false},
		{"10TB", 0, false},
		{"10 MB", 0, false},
		{"999999999999999999GB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
