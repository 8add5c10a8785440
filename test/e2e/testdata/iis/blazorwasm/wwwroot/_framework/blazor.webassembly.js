/* stand-in for the Blazor WebAssembly loader */
