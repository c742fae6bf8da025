import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { createAppRouter } from './router'
import { applyTheme, rememberedTheme, resolveTheme, systemPrefersDark } from './theme'
import './styles/theme.css'
import './styles/base.css'

// Paint the first frame in the last-used theme; the settings store takes over once loaded.
applyTheme(resolveTheme(rememberedTheme(), systemPrefersDark()))

createApp(App).use(createPinia()).use(createAppRouter()).mount('#app')
