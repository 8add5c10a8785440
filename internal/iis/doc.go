// Package iis holds the IIS native modules that stay active beside ANCM,
// each as a front-door stage (see package pipeline) built from the app's
// web.config section: IP and domain restrictions, request filtering, custom
// headers and dynamic compression. URL Rewrite lives in package rewrite.
//
// Every constructor returns nil when its section asks for nothing, so an
// app pays only for what its web.config configures.
package iis
